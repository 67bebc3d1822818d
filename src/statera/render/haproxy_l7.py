"""L7 policies and rules of an HTTP frontend: one ACL per rule, one ``http-request`` rule per
policy, in position order, keeping "first match wins" across actions (see haproxy.py).
"""

from __future__ import annotations

import re
import warnings

from statera.domain.enums import L7PolicyAction, L7RuleCompareType, L7RuleType
from statera.domain.model import L7Policy, L7Rule, Listener, LoadBalancer, Pool
from statera.render import escape as esc
from statera.render.escape import Cfg, RenderError, literal
from statera.render.haproxy_view import (
    HTTP_TOKEN,
    Acl,
    Frontend,
    PolicyRule,
    Route,
    backend_name,
    words,
)

MAX_RULES_PER_POLICY = 50  # keeps every condition line under HAProxy's 64 words

_MATCH = {
    L7RuleCompareType.REGEX: "reg",
    L7RuleCompareType.STARTS_WITH: "beg",
    L7RuleCompareType.ENDS_WITH: "end",
    L7RuleCompareType.CONTAINS: "sub",
    L7RuleCompareType.EQUAL_TO: "str",
}
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_DN_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(?:\.[0-9]+)+")
_PYTHON_ONLY_REGEX = re.compile(r"(?<!\\)(?:\\\\)*\\N\{|\(\?[imsxaLu-]*[aLu][imsxaLu-]*[:)]")
_API_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# Rule types whose values the API also accepts in that quoted form.
_API_QUOTABLE = frozenset({"HOST_NAME", "PATH", "FILE_TYPE", "HEADER"})


def l7_policies(fe: Frontend, lb: LoadBalancer, listener: Listener, listener_id: Cfg) -> list[Pool]:
    """ACLs and rules of the listener's policies, in position order; returns the pools the
    REDIRECT_TO_POOL policies route to."""
    pools: list[Pool] = []
    policies = [p for p in listener.l7policies if p.enabled and any(r.enabled for r in p.rules)]
    policies.sort(key=lambda p: (p.position, p.id))
    routed = [
        p
        for p in policies
        if p.action == L7PolicyAction.REDIRECT_TO_POOL
        and p.redirect_pool_id
        and lb.pool(p.redirect_pool_id) is not None
    ]
    for policy in policies:
        what = f"L7 policy {policy.id}"
        policy_id = esc.object_id(policy.id, "L7 policy id")
        action = _policy_action(policy, what)
        if action is None and policy not in routed:
            continue  # its pool is gone: nothing to route to
        rules = [r for r in policy.rules if r.enabled]
        if len(rules) > MAX_RULES_PER_POLICY:
            raise esc.refuse(what, len(rules), f"more than {MAX_RULES_PER_POLICY} rules")
        terms: list[Cfg] = []
        for rule in rules:
            rule_id = esc.object_id(rule.id, "L7 rule id")
            fe.acls.append(Acl(rule_id, _criterion(rule)))
            terms.append(Cfg("!" + rule_id) if rule.invert else rule_id)
        guard = [literal("!statera-l7-matched")] if routed else []
        condition = words(*guard, *terms)
        if action is not None:
            fe.policy_rules.append(PolicyRule(action, condition))
        else:
            pool = lb.pool(policy.redirect_pool_id or "")
            assert pool is not None
            pools.append(pool)
            fe.policy_rules.append(
                PolicyRule(Cfg(f"set-var(txn.statera_l7) str({policy_id})"), condition)
            )
            fe.pool_policies.append(Route(backend_name(pool, listener_id), policy_id))
    return pools


def _policy_action(policy: L7Policy, what: str) -> Cfg | None:
    if policy.action == L7PolicyAction.REJECT:
        return literal("deny")
    if policy.action == L7PolicyAction.REDIRECT_TO_POOL:
        return None
    if policy.action == L7PolicyAction.REDIRECT_TO_URL:
        kind, target = "location", policy.redirect_url
    elif policy.action == L7PolicyAction.REDIRECT_PREFIX:
        kind, target = "prefix", policy.redirect_prefix
    else:
        raise esc.refuse(what, policy.action, "unknown action")
    if not target:
        raise RenderError(f"{what}: {policy.action} needs a redirect {kind}.")
    code = 302 if policy.redirect_http_code is None else policy.redirect_http_code
    if code not in _REDIRECT_CODES:
        raise esc.refuse(what, code, "redirect_http_code must be 301, 302, 303, 307 or 308")
    # Both arguments are log-format strings in an http-request rule.
    target_cfg = esc.quoted_log_format(target, f"{what} redirect {kind}")
    return words(literal(f"redirect {kind}"), target_cfg, literal(f"code {code}"))


def _criterion(rule: L7Rule) -> Cfg:
    """What an ACL named after the rule tests: ``<fetch> [-i] -m <method> -- <value>``."""
    what = f"L7 rule {rule.id}"
    value = esc.plain_text(rule.value, f"{what} value")
    method = _MATCH.get(rule.compare_type)  # type: ignore[call-overload]
    if method is None:
        raise esc.refuse(what, rule.compare_type, "unknown compare_type")
    rtype = rule.type
    if rtype == L7RuleType.SSL_CONN_HAS_CERT:
        return literal("ssl_c_used")
    if rtype == L7RuleType.SSL_VERIFY_RESULT:
        if not re.fullmatch(r"[0-9]{1,10}", value):
            raise esc.refuse(what, value, "SSL_VERIFY_RESULT needs a non-negative integer")
        return literal(f"ssl_c_verify eq {int(value)}")
    if rtype == L7RuleType.HOST_NAME:
        fetch = literal("req.hdr(host) -i")
    elif rtype == L7RuleType.PATH:
        fetch = literal("path")
    elif rtype == L7RuleType.FILE_TYPE:
        fetch = literal("path")
        if rule.compare_type == L7RuleCompareType.EQUAL_TO:
            method = "end"
    elif rtype == L7RuleType.HEADER:
        key = esc.matching(rule.key, HTTP_TOKEN, f"{what} key", "a header name")
        fetch = Cfg(f"req.hdr({key})")
    elif rtype == L7RuleType.COOKIE:
        key = esc.matching(rule.key, HTTP_TOKEN, f"{what} key", "a cookie name")
        fetch = Cfg(f"req.cook({key})")
    elif rtype == L7RuleType.SSL_DN_FIELD:
        key = esc.matching(rule.key, _DN_FIELD, f"{what} key", "a DN field")
        fetch = Cfg(f"ssl_c_s_dn({key})")
    else:
        raise esc.refuse(what, rtype, "unknown rule type")
    if method == "reg":
        _check_regex(value, what)
    elif rtype in _API_QUOTABLE:
        value = api_unquoted(value)
    if not value:
        raise esc.refuse(what, rule.value, "a rule needs a non-empty value")
    return words(fetch, literal(f"-m {method} --"), esc.quoted(value, f"{what} value"))


def _check_regex(value: str, what: str) -> None:
    """HAProxy compiles ACL regexes with PCRE2; the API checked them with Python's ``re``.
    Refuse what Python rejects, and the few constructs Python accepts but PCRE2 does not
    (``\\N{name}``, the ``a``/``L``/``u`` inline flags)."""
    try:
        with warnings.catch_warnings():  # Python's own future-semantics notes: not PCRE's
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error:
        raise esc.refuse(what, value, "the regular expression does not compile") from None
    if _PYTHON_ONLY_REGEX.search(value):
        raise esc.refuse(what, value, "the regular expression uses Python-only syntax")


def api_unquoted(value: str) -> str:
    """The API accepts header-like values either bare or as a double-quoted string with
    backslash escapes (upstream passed those to HAProxy as-is); match the quoted form's text."""
    if len(value) >= 2 and _API_QUOTED.fullmatch(value):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
