"""L7 rules: what a rule's key and value may contain for each rule type, and the
create/read/update/delete of rules under an L7 policy.

Rule keys and values end up in haproxy.cfg ACLs, so they are held to strict character sets
here (matched whole with ``re.fullmatch``; no control characters or line breaks anywhere).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import (
    L7RuleCompareType,
    L7RuleType,
    OperatingStatus,
    ProvisioningStatus,
)
from statera.domain.errors import Conflict, NotFound
from statera.services import common, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import HTTP_TOKEN, check_text, invalid, one_of, required_bool

MAX_RULES_PER_POLICY = 50

# A header value without quotes: visible ASCII, no spaces; no quote or backslash, which
# would start quoting or escaping in haproxy.cfg (use the quoted form for those).
_HEADER_VALUE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# A quoted header value: spaces allowed, inner quotes and backslashes escaped.
_QUOTED_VALUE = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
# RFC 6265 cookie-octet: no spaces, quotes, commas, semicolons or backslashes.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")
# A distinguished-name attribute (CN, OU, emailAddress, ...).
_DN_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")

_NEEDS_KEY = frozenset({L7RuleType.HEADER, L7RuleType.COOKIE, L7RuleType.SSL_DN_FIELD})
_NO_KEY = frozenset({L7RuleType.SSL_CONN_HAS_CERT, L7RuleType.SSL_VERIFY_RESULT})

LISTING = listing.Listing(
    model=m.L7Rule,
    columns={
        "id": m.L7Rule.id,
        "type": m.L7Rule.type,
        "compare_type": m.L7Rule.compare_type,
        "key": m.L7Rule.key,
        "value": m.L7Rule.value,
        "invert": m.L7Rule.invert,
        "provisioning_status": m.L7Rule.provisioning_status,
        "operating_status": m.L7Rule.operating_status,
        "admin_state_up": m.L7Rule.enabled,
        "project_id": m.L7Rule.project_id,
        "tenant_id": m.L7Rule.project_id,
        "created_at": m.L7Rule.created_at,
        "updated_at": m.L7Rule.updated_at,
    },
)


# ---- validation ------------------------------------------------------------------------------


def _header_value(value: str) -> None:
    if not (_HEADER_VALUE.fullmatch(value) or _QUOTED_VALUE.fullmatch(value)):
        raise invalid(
            "value",
            value,
            "The value must be visible ASCII characters without "
            "spaces, quotes or backslashes, or a string in double "
            "quotes.",
        )


def check_rule(rtype: str, compare: str, key: str | None, value: Any) -> None:
    """400 unless (type, compare_type, key, value) make a rule HAProxy can express safely."""
    one_of("type", rtype, L7RuleType)
    one_of("compare_type", compare, L7RuleCompareType)
    check_text("value", value)
    if not value:
        raise invalid("value", value, "A rule needs a non-empty value.")
    if key is not None:
        check_text("key", key)
    if rtype in _NEEDS_KEY and not key:
        raise invalid("key", key, f"Rules of type {rtype} need a key.")
    if rtype in _NO_KEY and key is not None:
        raise invalid("key", key, f"Rules of type {rtype} do not use a key.")
    if key is not None:
        if rtype == L7RuleType.SSL_DN_FIELD:
            if not _DN_FIELD.fullmatch(key):
                raise invalid(
                    "key",
                    key,
                    "The key must be a distinguished name field such as CN, OU or emailAddress.",
                )
        elif not HTTP_TOKEN.fullmatch(key):
            raise invalid("key", key, "The key must be a valid HTTP header or cookie name.")
    if compare == L7RuleCompareType.REGEX:
        try:
            re.compile(value)
        except re.error as exc:
            raise invalid("value", value, f"Invalid regular expression: {exc}.") from None

    if rtype == L7RuleType.FILE_TYPE and compare not in (
        L7RuleCompareType.EQUAL_TO,
        L7RuleCompareType.REGEX,
    ):
        raise invalid(
            "compare_type", compare, "Rules of type FILE_TYPE only support EQUAL_TO and REGEX."
        )
    if (
        rtype in (L7RuleType.SSL_CONN_HAS_CERT, L7RuleType.SSL_VERIFY_RESULT)
        and compare != L7RuleCompareType.EQUAL_TO
    ):
        raise invalid("compare_type", compare, f"Rules of type {rtype} only support EQUAL_TO.")
    if rtype == L7RuleType.SSL_CONN_HAS_CERT and value.lower() != "true":
        raise invalid("value", value, "Rules of type SSL_CONN_HAS_CERT take the value 'True'.")
    if rtype == L7RuleType.SSL_VERIFY_RESULT and not re.fullmatch(r"[0-9]{1,10}", value):
        raise invalid(
            "value", value, "Rules of type SSL_VERIFY_RESULT take a non-negative integer."
        )
    if compare == L7RuleCompareType.REGEX:
        return
    if rtype == L7RuleType.COOKIE:
        if not _COOKIE_VALUE.fullmatch(value):
            raise invalid(
                "value",
                value,
                "A cookie value may not contain spaces, quotes, commas, semicolons or backslashes.",
            )
    elif rtype in (L7RuleType.HOST_NAME, L7RuleType.PATH, L7RuleType.FILE_TYPE, L7RuleType.HEADER):
        _header_value(value)


# ---- building ------------------------------------------------------------------------------


def build_l7rule(
    session: Session, deps: Deps, policy: m.L7Policy, data: dict[str, Any], *, graph: GraphBuild
) -> m.L7Rule:
    """Validate ``data`` and add a rule (PENDING_CREATE) to ``policy``."""
    existing = [r for r in policy.rules if r.provisioning_status != ProvisioningStatus.DELETED]
    if len(existing) >= MAX_RULES_PER_POLICY:
        raise Conflict(
            f"Too many rules on L7 policy {policy.id}: a policy holds at most "
            f"{MAX_RULES_PER_POLICY} rules."
        )
    rtype, compare = str(data.get("type")), str(data.get("compare_type"))
    key, value = data.get("key"), data.get("value")
    check_rule(rtype, compare, key, value)
    rule = m.L7Rule(
        id=new_id(),
        project_id=policy.project_id,
        l7policy_id=policy.id,
        type=rtype,
        compare_type=compare,
        key=key,
        value=value,
        invert=bool(data.get("invert")),
        enabled=data.get("admin_state_up") is not False,
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
    )
    policy.rules.append(rule)
    graph.add("l7rule", rule)
    if data.get("tags"):
        session.flush()
        common.set_tags(session, rule.id, data["tags"])
    return rule


# ---- operations ----------------------------------------------------------------------------


def lock_policy_tree(
    session: Session, policy_id: str
) -> tuple[m.LoadBalancer, m.Listener, m.L7Policy]:
    """Take the tree lock of the load balancer an L7 policy belongs to."""
    lb_id = session.scalar(
        sa.select(m.Listener.load_balancer_id)
        .join(m.L7Policy, m.L7Policy.listener_id == m.Listener.id)
        .where(m.L7Policy.id == policy_id)
    )
    if lb_id is None:
        raise NotFound(resource="L7 Policy", id=policy_id)
    lb = common.lock_load_balancer(session, lb_id)
    policy = common.get_or_404(session, m.L7Policy, policy_id)
    return lb, policy.listener, policy


def _rule_of(session: Session, policy_id: str, rule_id: str) -> m.L7Rule:
    rule = common.get_or_404(session, m.L7Rule, rule_id)
    if rule.l7policy_id != policy_id:
        raise NotFound(resource="L7 Rule", id=rule_id)
    return rule


def create(deps: Deps, ctx: RequestContext, policy_id: str, data: dict[str, Any]) -> m.L7Rule:
    def work(session: Session) -> str:
        lb, listener, policy = lock_policy_tree(session, policy_id)
        authorize(ctx, "l7rule:post", lb.project_id)
        common.require_mutable(lb, listener, policy)
        graph = GraphBuild(single_call=False)
        rule = build_l7rule(session, deps, policy, data, graph=graph)
        common.check_quota(session, deps, lb.project_id, graph.counts, being_created=graph.created)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener, policy)
        common.enqueue_child_change(session, ctx, lb, "l7rule", rule.id, "create")
        return rule.id

    rule_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, policy_id, rule_id, check=False)


def get(
    deps: Deps, ctx: RequestContext, policy_id: str, rule_id: str, *, check: bool = True
) -> m.L7Rule:
    with deps.db.read() as session:
        common.get_or_404(session, m.L7Policy, policy_id)
        rule = _rule_of(session, policy_id, rule_id)
        if check:
            authorize(ctx, "l7rule:get_one", rule.project_id)
        common.attach_tags(session, [rule])
        return rule


def list_(
    deps: Deps, ctx: RequestContext, policy_id: str, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    with deps.db.read() as session:
        policy = common.get_or_404(session, m.L7Policy, policy_id)
        authorize(ctx, "l7rule:get_all", policy.project_id)
        stmt = sa.select(m.L7Rule).where(
            m.L7Rule.l7policy_id == policy_id,
            m.L7Rule.provisioning_status != ProvisioningStatus.DELETED,
        )
        stmt = reads.scope_to_project(stmt, ctx, "l7rule", m.L7Rule.project_id, params)
        page = reads.filtered_page(session, deps, stmt, LISTING, params, base_url)
        common.attach_tags(session, page.items)
        return page


def update(
    deps: Deps, ctx: RequestContext, policy_id: str, rule_id: str, changes: dict[str, Any]
) -> m.L7Rule:
    def work(session: Session) -> None:
        lb, listener, policy = lock_policy_tree(session, policy_id)
        rule = _rule_of(session, policy_id, rule_id)
        authorize(ctx, "l7rule:put", lb.project_id)
        common.require_mutable(lb, listener, policy, rule)
        state: dict[str, Any] = {
            "type": rule.type,
            "compare_type": rule.compare_type,
            "key": rule.key,
            "value": rule.value,
        }
        for field in ("type", "compare_type", "value"):
            if field in changes:
                if changes[field] is None:
                    raise invalid(field, None, "This attribute cannot be null.")
                state[field] = str(changes[field])
        if "key" in changes:
            state["key"] = changes["key"]
        elif "type" in changes and state["type"] in _NO_KEY:
            # A rule that changes to a key-less type drops the key it had.
            state["key"] = None
        check_rule(state["type"], state["compare_type"], state["key"], state["value"])
        rule.type, rule.compare_type = state["type"], state["compare_type"]
        rule.key, rule.value = state["key"], state["value"]
        if "invert" in changes:
            rule.invert = bool(changes["invert"])
        if "admin_state_up" in changes:
            rule.enabled = required_bool(changes, "admin_state_up")
        if "tags" in changes:
            common.set_tags(session, rule.id, changes["tags"])
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener, policy, rule)
        common.enqueue_child_change(
            session, ctx, lb, "l7rule", rule.id, "update", {"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, policy_id, rule_id, check=False)


def delete(deps: Deps, ctx: RequestContext, policy_id: str, rule_id: str) -> None:
    def work(session: Session) -> None:
        lb, listener, policy = lock_policy_tree(session, policy_id)
        rule = _rule_of(session, policy_id, rule_id)
        authorize(ctx, "l7rule:delete", lb.project_id)
        common.require_mutable(lb, listener, policy, rule)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener, policy)
        common.mark(ProvisioningStatus.PENDING_DELETE, rule)
        common.enqueue_child_change(session, ctx, lb, "l7rule", rule.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()
