"""SEC-1, the renderer's half: no string from the API or the operator changes the structure
of haproxy.cfg.

Every string field that can reach the file is set, in the load balancer that uses every
feature (cut down to the listeners that carry the field, to keep this fast), to a benign
value mixed with hostile text: line breaks, NUL, U+2028/U+2029/U+0085, bidi and zero-width
characters, ``#``, braces, quotes, backslashes, ``%[``, ``$VAR``, ``;``, blanks, leading
dashes, and combinations of them. Each render must either raise RenderError, or produce a
file that

* has exactly the benign render's skeleton: line count and, per directive, (section,
  keyword, number of words), read back with HAProxy's own tokenizing rules, which also
  reject a stray CR/NUL, an unterminated quote or an environment-variable expansion;
* reads the value back as the one intact word it was meant to be, where it is a word;
* passes ``haproxy -c`` in zero-warning mode (many variants per run: ``check_many``).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statera.domain.model import HealthMonitor, L7Policy, L7Rule, Listener, LoadBalancer, Pool
from statera.render.escape import RenderError
from statera.render.haproxy import render_haproxy_config
from statera.render.haproxy_l7 import api_unquoted as _api_unquoted
from statera.render.options import RenderOptions
from tests.unit.render.conftest import Haproxy, full_lb, parse_config, skeleton, uid

# fmt: off
ATOMS = [
    "\n", "\r", "\0", "\u2028", "\u2029", "\u0085", "\t", "\x0b", "\x7f", "\u202e", "\ufeff",
    "#", "{", "}", '"', "\\", "%[", "%", "'", ";", " ", "$", "${HOME}", "$HOME", "\\n",
    "\\x0a", "\\\n", "--", "-i", "!",
]
# fmt: on
LEADING = ["#", '"', "'", "{", " ", "$HOME", "%[", "--", "-i", "!", "\n"]
COMBINATIONS = [
    'x" if TRUE #',
    "a\nbackend evil\n    server s 127.0.0.1:1",
    '\\" # ',
    "%[src,lua.x] %{+Q}[req.hdr(host)]",
    "{ always_true }",
    "' ; \\ $PATH",
    '"\\\\"\\\\',
    "\r\nX-Injected: 1",
    "\u2028bind :1",
    '" "',
    "\\x22 use_backend x",
]


def _mixes(benign: str, suffix_only: bool = False) -> list[str]:
    """Hostile text after, inside and before a benign value."""
    out = [benign + a for a in ATOMS + COMBINATIONS]
    if not suffix_only:
        half = len(benign) // 2
        out += [benign[:half] + a + benign[half:] for a in ATOMS + COMBINATIONS]
        out += [a + benign for a in LEADING]
    return list(dict.fromkeys(out))


# ---- where each field lives in full_lb() ---------------------------------------------------


def _listener(lb: LoadBalancer, n: int) -> Listener:
    return next(li for li in lb.listeners if li.id.endswith(f"{n:012d}"))


def _pool(lb: LoadBalancer, n: int) -> Pool:
    return next(p for p in lb.pools if p.id.endswith(f"{n:012d}"))


def _monitor(lb: LoadBalancer, n: int) -> HealthMonitor:
    hm = _pool(lb, n).health_monitor
    assert hm is not None
    return hm


def _policy(lb: LoadBalancer, n: int) -> L7Policy:
    return next(p for p in _listener(lb, 102).l7policies if p.id.endswith(f"{n:012d}"))


def _rule(lb: LoadBalancer, n: int) -> L7Rule:
    return next(
        r for p in _listener(lb, 102).l7policies for r in p.rules if r.id.endswith(f"{n:012d}")
    )


def _only(lb: LoadBalancer, listeners: frozenset[int]) -> LoadBalancer:
    """``lb`` with only the given listeners (and the pools they use)."""
    lb.listeners = [li for li in lb.listeners if int(li.id[-12:]) in listeners]
    used = {li.default_pool_id for li in lb.listeners}
    used |= {p.redirect_pool_id for li in lb.listeners for p in li.l7policies}
    lb.pools = [p for p in lb.pools if p.id in used]
    return lb


@dataclass(frozen=True)
class Field:
    """A string the renderer may write: how to read and replace it in ``full_lb()``, which
    listeners carry it, and (when it is written as one word) the word HAProxy reads back."""

    name: str
    get: Callable[[LoadBalancer, RenderOptions], str]
    set: Callable[[LoadBalancer, RenderOptions, str], RenderOptions]
    listeners: frozenset[int]
    word: Callable[[str], str] | None = None
    word_is_prefix: bool = False  # the value opens a longer word (the log-format)
    added: bool = False  # the benign render leaves the value out (an invalid one is dropped)
    suffix_only: bool = False  # an operator path: keep mixes inside the test's directory
    ignore: tuple[str, ...] = ()  # haproxy -c warnings that only say a file does not exist


def attr(
    name: str,
    obj: Callable[[LoadBalancer], object],
    key: str,
    listeners: set[int],
    word: Callable[[str], str] | None = None,
) -> Field:
    def set_(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
        setattr(obj(lb), key, value)
        return opts

    return Field(name, lambda lb, _: getattr(obj(lb), key), set_, frozenset(listeners), word)


def item(
    name: str, seq: Callable[[LoadBalancer], list[str]], index: int, listeners: set[int]
) -> Field:
    def set_(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
        seq(lb)[index] = value
        return opts

    return Field(name, lambda lb, _: seq(lb)[index], set_, frozenset(listeners))


def option(name: str, key: str, *ignore: str) -> Field:
    return Field(
        name,
        lambda _, o: getattr(o, key),
        lambda _, o, v: replace(o, **{key: v}),  # type: ignore[arg-type]
        frozenset({101, 102}),
        suffix_only=True,
        ignore=ignore,
    )


def _same(value: str) -> str:
    return value


def _log_format(value: str) -> str:
    return value.replace("%", "%%")


def _set_pool_id(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
    old = _pool(lb, 201).id
    _pool(lb, 201).id = value
    for li in lb.listeners:
        li.default_pool_id = value if li.default_pool_id == old else li.default_pool_id
        for p in li.l7policies:
            p.redirect_pool_id = value if p.redirect_pool_id == old else p.redirect_pool_id
    return opts


def _set_project(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
    lb.project_id = value
    return opts


def _set_header_value(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
    _listener(lb, 101).insert_headers["X-Real-IP"] = value
    return opts


def _set_header_key(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
    _listener(lb, 101).insert_headers[value] = "true"
    return opts


def _set_extra_cidr(lb: LoadBalancer, opts: RenderOptions, value: str) -> RenderOptions:
    _listener(lb, 101).allowed_cidrs.append(value)
    return opts


def _rule_value(n: int) -> Field:
    # SSL_CONN_HAS_CERT and SSL_VERIFY_RESULT values are no word; regexes, cookie and DN
    # values are never unquoted (the API's quoted form is for host, path and header values).
    words = {609: None, 610: None, 607: _same, 608: _same, 612: _same, 604: _same, 611: _same}
    word = words.get(n, _api_unquoted)
    return attr(f"l7rule.value[{n}]", lambda lb: _rule(lb, n), "value", {102}, word)


def _rule_key(n: int) -> Field:
    return attr(f"l7rule.key[{n}]", lambda lb: _rule(lb, n), "key", {102})


FIELDS = [
    # ids: names of sections, servers and ACLs, and file names
    attr("lb.id", lambda lb: lb, "id", {103}),
    attr("listener.id", lambda lb: _listener(lb, 102), "id", {102}),
    Field("pool.id", lambda lb, _: _pool(lb, 201).id, _set_pool_id, frozenset({101})),
    attr("member.id", lambda lb: _pool(lb, 201).members[0], "id", {101}),
    attr("healthmonitor.id", lambda lb: _monitor(lb, 201), "id", {101}),
    attr("l7policy.id", lambda lb: _policy(lb, 501), "id", {102}),
    attr("l7rule.id", lambda lb: _rule(lb, 603), "id", {102}),
    # user data written into the file
    Field(
        "lb.project_id",
        lambda lb, _: lb.project_id,
        _set_project,
        frozenset({103}),
        lambda v: _log_format(v) + " ",
        word_is_prefix=True,
    ),
    *(_rule_value(n) for n in range(601, 613)),
    *(_rule_key(n) for n in (603, 604, 611, 612)),
    attr("l7policy.redirect_url", lambda lb: _policy(lb, 503), "redirect_url", {102}, _log_format),
    attr(
        "l7policy.redirect_prefix",
        lambda lb: _policy(lb, 504),
        "redirect_prefix",
        {102},
        _log_format,
    ),
    attr(
        "session_persistence.cookie_name",
        lambda lb: _pool(lb, 202).session_persistence,
        "cookie_name",
        {101},
    ),
    attr("healthmonitor.url_path", lambda lb: _monitor(lb, 201), "url_path", {101}, _same),
    attr("healthmonitor.expected_codes", lambda lb: _monitor(lb, 201), "expected_codes", {101}),
    attr(
        "healthmonitor.domain_name", lambda lb: _monitor(lb, 201), "domain_name", {101}, _log_format
    ),
    attr("healthmonitor.http_method", lambda lb: _monitor(lb, 201), "http_method", {101}),
    attr("listener.tls_ciphers", lambda lb: _listener(lb, 102), "tls_ciphers", {102}),
    attr("pool.tls_ciphers", lambda lb: _pool(lb, 202), "tls_ciphers", {101}),
    item("listener.tls_versions[]", lambda lb: _listener(lb, 102).tls_versions, 0, {102}),
    item("pool.tls_versions[]", lambda lb: _pool(lb, 202).tls_versions, 1, {101}),
    item("listener.alpn_protocols[]", lambda lb: _listener(lb, 102).alpn_protocols, 0, {102}),
    item("pool.alpn_protocols[]", lambda lb: _pool(lb, 202).alpn_protocols, 1, {101}),
    Field(
        "listener.allowed_cidrs[]",
        lambda lb, _: "10.9.0.0/16",
        _set_extra_cidr,
        frozenset({101}),
        added=True,
    ),
    Field(
        "listener.insert_headers value", lambda lb, _: "false", _set_header_value, frozenset({101})
    ),
    Field(
        "listener.insert_headers key",
        lambda lb, _: "X-Unsupported",
        _set_header_key,
        frozenset({101}),
    ),
    attr(
        "listener.default_tls_container_ref",
        lambda lb: _listener(lb, 102),
        "default_tls_container_ref",
        {102},
    ),
    item(
        "listener.sni_container_refs[]", lambda lb: _listener(lb, 102).sni_container_refs, 0, {102}
    ),
    attr(
        "listener.client_ca_tls_container_ref",
        lambda lb: _listener(lb, 102),
        "client_ca_tls_container_ref",
        {102},
    ),
    attr(
        "listener.client_crl_container_ref",
        lambda lb: _listener(lb, 102),
        "client_crl_container_ref",
        {102},
    ),
    attr("pool.tls_container_ref", lambda lb: _pool(lb, 202), "tls_certificate_id", {101}),
    attr("pool.ca_tls_container_ref", lambda lb: _pool(lb, 202), "ca_tls_certificate_id", {101}),
    attr("pool.crl_container_ref", lambda lb: _pool(lb, 202), "crl_container_id", {101}),
    # addresses
    attr("member.address", lambda lb: _pool(lb, 201).members[0], "address", {101}),
    attr("member.monitor_address", lambda lb: _pool(lb, 201).members[0], "monitor_address", {101}),
    attr("vip.ip_address", lambda lb: lb.vip, "ip_address", {103}),
    attr("additional_vip.ip_address", lambda lb: lb.additional_vips[0], "ip_address", {103}),
    # values the API restricts to enumerations
    attr("listener.protocol", lambda lb: _listener(lb, 103), "protocol", {103}),
    attr(
        "listener.client_authentication",
        lambda lb: _listener(lb, 102),
        "client_authentication",
        {102},
    ),
    attr("pool.protocol", lambda lb: _pool(lb, 203), "protocol", {103}),
    attr("pool.lb_algorithm", lambda lb: _pool(lb, 201), "lb_algorithm", {101}),
    attr("session_persistence.type", lambda lb: _pool(lb, 201).session_persistence, "type", {101}),
    attr("healthmonitor.type", lambda lb: _monitor(lb, 201), "type", {101}),
    attr("l7policy.action", lambda lb: _policy(lb, 503), "action", {102}),
    attr("l7rule.type", lambda lb: _rule(lb, 601), "type", {102}),
    attr("l7rule.compare_type", lambda lb: _rule(lb, 601), "compare_type", {102}),
    # the operator's settings
    option("options.stats_socket", "stats_socket"),
    option("options.server_state_file", "server_state_file", "Can't open global server state file"),
    option("options.cert_dir", "cert_dir"),
    option("options.base_path", "base_path"),
    option("options.log_target", "log_target"),
    option("options.hard_stop_after", "hard_stop_after"),
]
# The operator's log format is a log-format on purpose (%[…], %{…} are its features), so
# only the hostile text that is not log-format syntax is tried on it.
LOG_FORMAT = option("options.user_log_format", "user_log_format")
_LOG_FORMAT_ATOMS = [a for a in ATOMS if "%" not in a and a not in "{}"]


@dataclass
class Outcome:
    refused: int
    rendered: list[str]


def _variant(
    field: Field, seed: int, value: str | None, base: RenderOptions
) -> tuple[LoadBalancer, RenderOptions]:
    lb = _only(full_lb(seed), field.listeners)
    return lb, (base if value is None else field.set(lb, base, value))


def _try(haproxy: Haproxy, field: Field, values: list[str], base: RenderOptions) -> Outcome:
    """Render every value in its own load balancer (distinct ids), check each rendered one
    against the benign skeleton and its word, then haproxy -c them all in one run."""
    lb, opts = _variant(field, 0, None, base)
    if not field.added:
        opts = field.set(lb, opts, field.get(lb, opts))
    expected = skeleton(render_haproxy_config(lb, opts))
    outcome = Outcome(0, [])
    rendered_values = []
    for seed, value in enumerate(values, start=1):
        lb, opts = _variant(field, seed, value, base)
        try:
            config = render_haproxy_config(lb, opts)
        except RenderError as exc:
            assert "refusing" in str(exc) or "needs" in str(exc), exc
            outcome.refused += 1
            continue
        parsed = parse_config(config)
        assert skeleton(config, parsed) == expected, f"{field.name}={value!r} changed it"
        if field.word is not None:
            words = {w for _, ws in parsed for w in ws}
            wanted = field.word(value)
            if field.word_is_prefix:
                assert any(w.startswith(wanted) for w in words), (field.name, value, wanted)
            else:
                assert wanted in words, f"{field.name}={value!r} not read back as {wanted!r}"
        haproxy.write_materials(lb, opts)
        outcome.rendered.append(config)
        rendered_values.append(value)
    if outcome.rendered:
        diagnostics = haproxy.check_many(outcome.rendered)
        bad = [
            (value, kept)
            for value, found in zip(rendered_values, diagnostics, strict=True)
            if (kept := [d for d in found if not any(i in d for i in field.ignore)])
        ]
        assert not bad, f"{field.name}: haproxy -c refused {bad[:3]}"
    return outcome


@pytest.fixture(scope="module")
def base(haproxy: Haproxy) -> RenderOptions:
    # No peers and no internal exporter: check_many lays many configs end to end.
    return haproxy.options(prometheus_port=0)


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
def test_hostile_values(haproxy: Haproxy, base: RenderOptions, field: Field) -> None:
    _try(haproxy, field, _mixes(field.get(full_lb(), base), field.suffix_only), base)


def test_hostile_log_format(haproxy: Haproxy, base: RenderOptions) -> None:
    fmt = base.user_log_format
    values = [fmt + a for a in _LOG_FORMAT_ATOMS] + [a + fmt for a in _LOG_FORMAT_ATOMS]
    outcome = _try(haproxy, LOG_FORMAT, values, base)
    assert len(outcome.rendered) >= 8  # quotes, backslashes, '#', '$', ';' are escaped


@pytest.mark.parametrize("field", [f for f in FIELDS if f.word is not None], ids=lambda f: f.name)
def test_quoted_fields_keep_printable_hostile_text(
    haproxy: Haproxy, base: RenderOptions, field: Field
) -> None:
    """Fields written as quoted words render printable hostile text rather than refuse it,
    so the read-back above is really exercised for them."""
    benign = field.get(full_lb(), base)
    printable = [benign + a for a in ('"', "\\", "#", "$HOME", "%[src]", "{ x }", "'", " ;")]
    outcome = _try(haproxy, field, printable, base)
    assert len(outcome.rendered) >= 3, f"{field.name} refused most printable hostile text"


def test_every_control_character_is_refused(base: RenderOptions) -> None:
    field = next(f for f in FIELDS if f.name == "l7rule.value[603]")
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x200E, 0x202E, 0xFEFF]:
        lb, opts = _variant(field, 0, f"curl{chr(code)}x", base)
        with pytest.raises(RenderError, match=uid(603)):
            render_haproxy_config(lb, opts)


def test_names_are_not_rendered(base: RenderOptions) -> None:
    lb = full_lb()
    clean = render_haproxy_config(lb, base)
    named: list[LoadBalancer | Listener | Pool] = [lb, *lb.listeners, *lb.pools]
    for obj in named:
        obj.name = 'x"\n#{ %[src] \\ \u2028'
    assert render_haproxy_config(lb, base) == clean


# ---- hypothesis: arbitrary mixes ------------------------------------------------------------

_HOSTILE_CHARS = (
    st.sampled_from(ATOMS) | st.sampled_from(list(string.printable)) | st.characters(codec="utf-8")
)
_HOSTILE = st.lists(_HOSTILE_CHARS, min_size=1, max_size=8).map("".join)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    field=st.sampled_from(FIELDS),
    hostile=st.lists(st.tuples(_HOSTILE, st.integers(0, 2)), min_size=1, max_size=10),
)
def test_hostile_values_hypothesis(
    haproxy: Haproxy, base: RenderOptions, field: Field, hostile: list[tuple[str, int]]
) -> None:
    benign = field.get(full_lb(), base)
    half = len(benign) // 2
    values = []
    for text, where in hostile:
        mixes = [benign + text, text + benign, benign[:half] + text + benign[half:]]
        values.append(mixes[0 if field.suffix_only else where])
    _try(haproxy, field, values, base)
