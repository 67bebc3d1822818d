"""haproxy.cfg for one load balancer: a pure function of its data and the render options.

One HAProxy 2.6 process serves every TCP-family listener of the load balancer (UDP and SCTP
listeners belong to keepalived's LVS and are left out here). Each enabled listener is a
``frontend <listener_id>``; each pool a listener uses (its default pool and the pools of its
REDIRECT_TO_POOL policies) is a ``backend <pool_id>:<listener_id>``.

This module turns the data into a view made only of `Cfg` values (see render/escape.py);
``templates/haproxy.cfg.j2`` lays the view out. Deliberate differences from upstream:

* L7 policies keep "first match wins" across actions: HAProxy runs every ``http-request``
  rule before any ``use_backend``, so a REDIRECT_TO_POOL match is recorded in a variable
  that later REJECT/redirect policies test, and ``use_backend`` reads it.
* PING monitors are TCP connects to the monitor port: HAProxy cannot send ICMP, and
  ``external-check`` would need ``insecure-fork-wanted``.
* SOURCE_IP_PORT hashes ``src:src_port`` (``balance hash``, new in HAProxy 2.6).
* ``allowed_cidrs`` are enforced by HAProxy itself (``tcp-request connection reject``).
* A monitor ``delay`` of 0 is rendered as ``inter 1s`` (HAProxy refuses 0).
* Non-contiguous ``tls_versions`` are rendered as their span: HAProxy ignores ``no-tlsv1x``
  next to ``ssl-min-ver``/``ssl-max-ver``.
"""

from __future__ import annotations

import re
import ssl
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import jinja2

from statera.domain.enums import (
    TLS_VERSION_ORDER,
    AlpnProtocol,
    ClientAuthentication,
    HealthMonitorType,
    HttpMethod,
    L7PolicyAction,
    L7RuleCompareType,
    L7RuleType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from statera.domain.model import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
)
from statera.render import escape as esc
from statera.render.escape import Cfg, RenderError, literal
from statera.render.options import RenderOptions, cert_file, crt_list_file

__all__ = ["RenderError", "crt_list_path", "render_crt_list", "render_haproxy_config"]

PEERS_SECTION = "statera_peers"
MAX_CONNECTIONS = 1_000_000
MAX_TIMEOUT_MS = 2_147_483_647
MAX_RULES_PER_POLICY = 50  # keeps every condition line under HAProxy's 64 words
_CIDRS_PER_LINE = 32
_STICK_SIZE = "10k"

_HTTP_FRONTENDS = frozenset({"HTTP", "TERMINATED_HTTPS", "PROMETHEUS"})
_TCP_FRONTENDS = frozenset({"TCP", "HTTPS"})
_LVS_PROTOCOLS = frozenset({"UDP", "SCTP"})
_HTTP_POOLS = frozenset({"HTTP"})
_TCP_POOLS = frozenset({"TCP", "HTTPS"})
_PROXY_POOLS = frozenset({"PROXY", "PROXYV2"})

_BALANCE = {
    LbAlgorithm.ROUND_ROBIN: "roundrobin",
    LbAlgorithm.LEAST_CONNECTIONS: "leastconn",
    LbAlgorithm.SOURCE_IP: "source",
}
_MATCH = {
    L7RuleCompareType.REGEX: "reg",
    L7RuleCompareType.STARTS_WITH: "beg",
    L7RuleCompareType.ENDS_WITH: "end",
    L7RuleCompareType.CONTAINS: "sub",
    L7RuleCompareType.EQUAL_TO: "str",
}
_VERIFY = {
    ClientAuthentication.NONE: "none",
    ClientAuthentication.OPTIONAL: "optional",
    ClientAuthentication.MANDATORY: "required",
}
_HAPROXY_TLS_VERSION = {
    "SSLv3": "SSLv3",
    "TLSv1": "TLSv1.0",
    "TLSv1.1": "TLSv1.1",
    "TLSv1.2": "TLSv1.2",
    "TLSv1.3": "TLSv1.3",
}
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Fixed header lines: the user only switches them on ("true"), never supplies their text.
_CLIENT_IP_HEADERS = ("X-Forwarded-IP", "X-Client-IP", "X-Real-IP")
_SSL_HEADERS = (
    ("X-SSL-Client-Verify", "%[ssl_c_verify]"),
    ("X-SSL-Client-Has-Cert", "%[ssl_c_used]"),
    ("X-SSL-Client-DN", "%{+Q}[ssl_c_s_dn]"),
    ("X-SSL-Client-CN", "%{+Q}[ssl_c_s_dn(cn)]"),
    ("X-SSL-Issuer", "%{+Q}[ssl_c_i_dn]"),
    ("X-SSL-Client-SHA1", "%{+Q}[ssl_c_sha1,hex]"),
    ("X-SSL-Client-Not-Before", "%{+Q}[ssl_c_notbefore]"),
    ("X-SSL-Client-Not-After", "%{+Q}[ssl_c_notafter]"),
)

# Grammars of the values that are checked rather than quoted.
_CIPHERS = re.compile(r"[A-Za-z0-9:+!@=_.\-]{1,4096}")
# RFC 7230 token characters: HTTP header and cookie names inside a sample-fetch argument.
_TOKEN = re.compile(r"[A-Za-z0-9!$&*+\-.^_`|~]{1,255}")
_DN_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(?:\.[0-9]+)+")
_CODE_OR_RANGE = r"[1-5][0-9]{2}(?:-[1-5][0-9]{2})?"
_EXPECTED_CODES = re.compile(rf"{_CODE_OR_RANGE}(?:,{_CODE_OR_RANGE}){{0,99}}")
_URL_PATH = re.compile(r"/[\x21-\x7e]{0,4095}")
_DURATION = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?")
# A unix socket path, or [proto@]address[:port]: never something HAProxy reads as an option.
_LOG_TARGET = re.compile(
    r"/[A-Za-z0-9._/-]{1,254}|(?:(?:udp|udp4|udp6|tcp|tcp4|tcp6|unix|ipv4|ipv6)@)?"
    r"[A-Za-z0-9\[][A-Za-z0-9._:/\[\]-]{0,253}"
)
# TLS 1.3 suites (``ciphersuites``): OpenSSL refuses the whole list for one unknown name.
_TLS13_SUITES = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)
_PYTHON_ONLY_REGEX = re.compile(r"(?<!\\)(?:\\\\)*\\N\{|\(\?[imsxaLu-]*[aLu][imsxaLu-]*[:)]")
_API_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# Rule types whose values the API also accepts in that quoted form.
_API_QUOTABLE = frozenset({"HOST_NAME", "PATH", "FILE_TYPE", "HEADER"})
_LOG_FIELDS = re.compile(r"\{(project_id|lb_id)\}")
# Log-format variables HAProxy reserves for HTTP mode (a TCP frontend refuses them), and
# literal "%%" which must be skipped over when looking for them.
_HTTP_LOG_VARIABLES = re.compile(
    r"%%|%(?:\{[^}]*\})?(?:HPO|HM|HP|HQ|HU|HV|CC|CS|hrl|hsl|hr|hs|r)(?![A-Za-z0-9_])"
)


# ---- the view the template lays out ----------------------------------------------------------


@dataclass
class _Acl:
    name: Cfg
    criterion: Cfg


@dataclass
class _PolicyRule:
    action: Cfg
    condition: Cfg


@dataclass
class _Route:
    backend: Cfg
    policy_id: Cfg


@dataclass
class _Header:
    name: Cfg
    value: Cfg


@dataclass
class _Frontend:
    id: Cfg
    mode: Cfg
    maxconn: Cfg
    binds: list[Cfg]
    timeout_client: Cfg
    inspect_delay: Cfg | None = None
    log_format: Cfg | None = None
    allowed_sources: list[Cfg] = field(default_factory=list)
    forwardfor: bool = False
    request_headers: list[_Header] = field(default_factory=list)
    hsts: Cfg | None = None
    prometheus: bool = False
    acls: list[_Acl] = field(default_factory=list)
    policy_rules: list[_PolicyRule] = field(default_factory=list)
    pool_policies: list[_Route] = field(default_factory=list)
    unrouted: Cfg | None = None
    default_backend: Cfg | None = None


@dataclass
class _Backend:
    name: Cfg
    mode: Cfg
    balance: list[Cfg]
    fullconn: Cfg
    timeout_connect: Cfg
    timeout_server: Cfg
    persistence: list[Cfg]
    health_check: list[Cfg]
    servers: list[Cfg]


@dataclass
class _Peer:
    name: Cfg
    address: Cfg


def _only_cfg(value: object) -> object:
    if isinstance(value, Cfg):
        return value
    raise TypeError(f"haproxy.cfg template got an unescaped {type(value).__name__}: {value!r}")


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("statera.render", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    finalize=_only_cfg,
)


def words(*parts: Cfg | None) -> Cfg:
    """Words already made safe, joined into one directive (None parts are left out)."""
    for part in parts:
        if part is not None and not isinstance(part, Cfg):
            raise TypeError(f"unescaped word {part!r}")
    return Cfg(" ".join(p for p in parts if p is not None))


# ---- entry points --------------------------------------------------------------------------


def render_haproxy_config(lb: LoadBalancer, opts: RenderOptions) -> str:
    """The whole haproxy.cfg of ``lb``. Raises RenderError (naming the object) rather than
    write a value that could change the file's structure."""
    lb_id = esc.object_id(lb.id, "load balancer id")
    # Not all written here, but every path the agent derives from them is: check them now.
    esc.path(opts.base_path, "base_path")
    esc.path(opts.cert_dir, "cert_dir")
    listeners = _served_listeners(lb)
    vips = _vip_addresses(lb) if listeners else []
    frontends: list[_Frontend] = []
    backends: list[_Backend] = []
    for listener in listeners:
        frontend, pools = _frontend(lb, listener, vips, opts)
        frontends.append(frontend)
        backends.extend(_backend(pool, listener, frontend, opts) for pool in pools)
    prometheus = opts.prometheus_port and any(
        li.protocol == ListenerProtocol.PROMETHEUS for li in listeners
    )
    total = sum(int(fe.maxconn) for fe in frontends) or opts.default_connection_limit
    text = _ENV.get_template("haproxy.cfg.j2").render(
        lb_id=lb_id,
        g=_global_view(opts, min(total, MAX_CONNECTIONS)),
        peers=_peers(opts),
        peers_section=literal(PEERS_SECTION),
        prometheus_internal=(
            esc.address_port("127.0.0.1", opts.prometheus_port, "prometheus_port")
            if prometheus
            else None
        ),
        frontends=frontends,
        backends=backends,
    )
    return text


def crt_list_path(listener: Listener, opts: RenderOptions) -> Cfg:
    """Where the agent must write ``render_crt_list(listener, opts)``."""
    listener_id = esc.object_id(listener.id, "listener id")
    return esc.join_path(esc.path(opts.cert_dir, "cert_dir"), crt_list_file(listener_id))


def render_crt_list(listener: Listener, opts: RenderOptions) -> str:
    """The crt-list of a TLS-terminating listener: the default certificate first (HAProxy
    serves it when no SNI matches), then the SNI certificates, one PEM path per line;
    HAProxy picks among them by the names inside each certificate."""
    what = f"listener {listener.id}"
    refs = _server_certificates(listener, what)
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    return "".join(_cert_path(cert_dir, ref, what) + "\n" for ref in refs)


# ---- global, defaults, peers ---------------------------------------------------------------


def _global_view(opts: RenderOptions, maxconn: int) -> dict[str, Cfg | bool | None]:
    logging = opts.log_target is not None
    return {
        "maxconn": esc.integer(maxconn, "maxconn", 1, MAX_CONNECTIONS),
        "nbthread": esc.integer(opts.nbthread, "nbthread", 1, 64),
        "hard_stop_after": esc.matching(
            opts.hard_stop_after, _DURATION, "hard_stop_after", "a HAProxy duration"
        ),
        "stats_socket": esc.path(opts.stats_socket, "stats_socket"),
        "server_state_file": esc.path(opts.server_state_file, "server_state_file"),
        "log_target": (
            esc.matching(opts.log_target, _LOG_TARGET, "log_target", "a syslog address")
            if logging
            else None
        ),
        "connection_logging": opts.connection_logging and logging,
        "local_peer": (
            esc.name(opts.local_peer, "local_peer") if opts.peers and opts.local_peer else None
        ),
        "timeout_connect": _ms(opts.timeout_member_connect, "timeout_member_connect"),
        "timeout_client": _ms(opts.timeout_client_data, "timeout_client_data"),
        "timeout_server": _ms(opts.timeout_member_data, "timeout_member_data"),
    }


def _peers(opts: RenderOptions) -> list[_Peer]:
    peers = [
        _Peer(esc.name(name, "peer name"), esc.address_port(ip, port, f"peer {name}"))
        for name, ip, port in opts.peers
    ]
    if peers and opts.local_peer is not None and opts.local_peer not in {p.name for p in peers}:
        raise esc.refuse("local_peer", opts.local_peer, "it must be one of the peers")
    return peers


def _ms(value: object, what: str) -> Cfg:
    return Cfg(esc.integer(value, what, 0, MAX_TIMEOUT_MS) + "ms")


# ---- listeners -> frontends ----------------------------------------------------------------


def _served_listeners(lb: LoadBalancer) -> list[Listener]:
    served = []
    for listener in lb.listeners:
        if listener.protocol in _LVS_PROTOCOLS:
            continue
        if listener.protocol not in _HTTP_FRONTENDS | _TCP_FRONTENDS:
            raise esc.refuse(f"listener {listener.id}", listener.protocol, "unknown protocol")
        if listener.enabled:
            served.append(listener)
    return served


def _vip_addresses(lb: LoadBalancer) -> list[str]:
    """The VIP and additional VIPs, normalized (two spellings of one address bind once)."""
    raw = [lb.vip.ip_address] if lb.vip is not None and lb.vip.ip_address else []
    raw += [av.ip_address for av in lb.additional_vips if av.ip_address]
    if not raw:
        raise RenderError(f"load balancer {lb.id}: listeners need a VIP address to bind.")
    return list(dict.fromkeys(str(esc.ip_address(ip, f"load balancer {lb.id} VIP")) for ip in raw))


def _frontend(
    lb: LoadBalancer, listener: Listener, vips: Sequence[str], opts: RenderOptions
) -> tuple[_Frontend, list[Pool]]:
    what = f"listener {listener.id}"
    listener_id = esc.object_id(listener.id, "listener id")
    http = listener.protocol in _HTTP_FRONTENDS
    tls = _bind_tls(listener, opts, what)
    fe = _Frontend(
        id=listener_id,
        mode=literal("http" if http else "tcp"),
        maxconn=_connection_limit(listener, opts),
        binds=[
            words(esc.address_port(ip, listener.protocol_port, f"{what} VIP"), tls) for ip in vips
        ],
        timeout_client=_ms(
            _or(listener.timeout_client_data, opts.timeout_client_data),
            f"{what} timeout_client_data",
        ),
    )
    inspect = _or(listener.timeout_tcp_inspect, opts.timeout_tcp_inspect)
    if inspect:
        fe.inspect_delay = _ms(inspect, f"{what} timeout_tcp_inspect")
    if opts.log_target is not None and opts.connection_logging:
        fe.log_format = _log_format(lb, opts, http)
    fe.allowed_sources = _allowed_sources(listener, what)
    if listener.protocol == ListenerProtocol.PROMETHEUS:
        fe.prometheus = True
        return fe, []
    pools: list[Pool] = []
    if http:
        _insert_headers(fe, listener, what)
        fe.hsts = _hsts(listener, what)
        pools = _l7(fe, lb, listener, listener_id)
    default = lb.pool(listener.default_pool_id) if listener.default_pool_id else None
    if default is not None:
        fe.default_backend = _backend_name(default, listener_id)
        pools.insert(0, default)
    elif http:
        fe.unrouted = literal(
            "http-request return status 503"
            + (" unless statera-l7-matched" if fe.pool_policies else "")
        )
    else:
        fe.unrouted = literal("tcp-request connection reject")
    return fe, list({p.id: p for p in pools}.values())


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _connection_limit(listener: Listener, opts: RenderOptions) -> Cfg:
    """The listener's limit (-1: the deployment's default), at most HAProxy's global cap."""
    limit = listener.connection_limit
    if limit is None or limit == -1:
        limit = opts.default_connection_limit
    checked = int(esc.integer(limit, f"listener {listener.id} connection_limit", 0, 2**31 - 1))
    return Cfg(str(min(checked, MAX_CONNECTIONS)))


def _log_format(lb: LoadBalancer, opts: RenderOptions, http: bool) -> Cfg:
    """The operator's log-format with this load balancer's ids filled in. The format itself
    is trusted to be a log-format; the project id is user data, so its ``%`` are doubled.
    TCP frontends log ``-`` where the format asks for HTTP-only variables."""
    fmt = esc.plain_text(opts.user_log_format, "user_log_format")
    if not http:
        fmt = _HTTP_LOG_VARIABLES.sub(lambda m: m.group(0) if m.group(0) == "%%" else "-", fmt)
    fields = {
        "project_id": esc.log_format_text(lb.project_id, f"load balancer {lb.id} project_id"),
        "lb_id": str(esc.object_id(lb.id, "load balancer id")),
    }
    return esc.quoted(_LOG_FIELDS.sub(lambda m: fields[m.group(1)], fmt), "user_log_format")


def _allowed_sources(listener: Listener, what: str) -> list[Cfg]:
    if not listener.allowed_cidrs:
        return []
    networks = [esc.cidr(raw) for raw in listener.allowed_cidrs]
    valid = list(dict.fromkeys(n for n in networks if n is not None))
    if not valid:
        # Dropping every entry would open the listener to all: refuse instead.
        raise esc.refuse(what, listener.allowed_cidrs, "allowed_cidrs has no valid network")
    return [words(*valid[i : i + _CIDRS_PER_LINE]) for i in range(0, len(valid), _CIDRS_PER_LINE)]


def _insert_headers(fe: _Frontend, listener: Listener, what: str) -> None:
    wanted = set()
    for key, value in listener.insert_headers.items():
        esc.plain_text(key, f"{what} insert_headers key")
        if esc.plain_text(value, f"{what} insert_headers[{key!r}]").lower() == "true":
            wanted.add(key.lower())
    terminated = listener.protocol == ListenerProtocol.TERMINATED_HTTPS
    fe.forwardfor = "x-forwarded-for" in wanted
    lines: list[tuple[str, str]] = []
    if "x-forwarded-port" in wanted:
        lines.append(("X-Forwarded-Port", "%[dst_port]"))
    if "x-forwarded-proto" in wanted:
        lines.append(("X-Forwarded-Proto", "https" if terminated else "http"))
    lines += [(name, "%[src]") for name in _CLIENT_IP_HEADERS if name.lower() in wanted]
    if terminated:
        lines += [(name, fmt) for name, fmt in _SSL_HEADERS if name.lower() in wanted]
    fe.request_headers = [_Header(literal(name), literal(fmt)) for name, fmt in lines]


def _hsts(listener: Listener, what: str) -> Cfg | None:
    if listener.protocol != ListenerProtocol.TERMINATED_HTTPS or listener.hsts_max_age is None:
        return None
    value = "max-age=" + esc.integer(listener.hsts_max_age, f"{what} hsts_max_age", 0, 2**31 - 1)
    if listener.hsts_include_subdomains:
        value += "; includeSubDomains"
    if listener.hsts_preload:
        value += "; preload"
    return esc.quoted(value, f"{what} hsts")


# ---- TLS -------------------------------------------------------------------------------------


def _server_certificates(listener: Listener, what: str) -> list[str]:
    refs = [listener.default_tls_container_ref, *listener.sni_container_refs]
    unique = list(dict.fromkeys(r for r in refs if r is not None))
    if not unique:
        raise RenderError(f"{what}: a TLS-terminating listener needs a certificate.")
    return unique


def _cert_path(cert_dir: Cfg, ref: object, what: str) -> Cfg:
    return esc.join_path(cert_dir, cert_file(esc.plain_text(ref, f"{what} certificate ref")))


def _bind_tls(listener: Listener, opts: RenderOptions, what: str) -> Cfg | None:
    terminated = listener.protocol == ListenerProtocol.TERMINATED_HTTPS or (
        listener.protocol == ListenerProtocol.PROMETHEUS
        and (listener.default_tls_container_ref or listener.sni_container_refs)
    )
    if not terminated:
        return None
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    for ref in _server_certificates(listener, what):
        _cert_path(cert_dir, ref, what)
    parts = [literal("ssl crt-list"), crt_list_path(listener, opts)]
    verify = _VERIFY.get(listener.client_authentication)  # type: ignore[call-overload]
    if verify is None:
        raise esc.refuse(what, listener.client_authentication, "unknown client_authentication")
    if listener.client_ca_tls_container_ref:
        parts += [
            literal("ca-file"),
            _cert_path(cert_dir, listener.client_ca_tls_container_ref, what),
        ]
        parts += [literal("verify"), literal(verify)]
        if listener.client_crl_container_ref:
            parts += [
                literal("crl-file"),
                _cert_path(cert_dir, listener.client_crl_container_ref, what),
            ]
    elif verify != "none" or listener.client_crl_container_ref:
        raise RenderError(f"{what}: client authentication needs a client CA certificate.")
    parts += _tls_options(
        listener.tls_ciphers, listener.tls_versions, listener.alpn_protocols, what
    )
    return words(*parts)


def _tls_options(
    ciphers: str | None, versions: Iterable[str], alpn: Iterable[str], what: str
) -> list[Cfg]:
    """``ciphers`` (TLS 1.2 and below) / ``ciphersuites`` (TLS 1.3), the version span and
    ALPN, shared by frontend binds and re-encrypting servers."""
    parts: list[Cfg] = []
    if ciphers:
        esc.matching(ciphers, _CIPHERS, f"{what} tls_ciphers", "an OpenSSL cipher string")
        names = [c for c in ciphers.split(":") if c]
        legacy = [c for c in names if not c.startswith("TLS_")]
        suites = [c for c in names if c.startswith("TLS_")]
        for suite in suites:
            if suite not in _TLS13_SUITES:
                raise esc.refuse(f"{what} tls_ciphers", suite, "unknown TLS 1.3 cipher suite")
        if legacy:
            if not _openssl_selects_some(":".join(legacy)):
                raise esc.refuse(f"{what} tls_ciphers", ciphers, "OpenSSL selects no cipher")
            parts += [literal("ciphers"), Cfg(":".join(legacy))]
        if suites:
            parts += [literal("ciphersuites"), Cfg(":".join(suites))]
    chosen = list(versions)
    for version in chosen:
        if version not in _HAPROXY_TLS_VERSION:
            raise esc.refuse(f"{what} tls_versions", version, "unknown TLS version")
    if chosen:
        ordered = sorted(chosen, key=TLS_VERSION_ORDER.index)
        parts += [literal("ssl-min-ver"), literal(_HAPROXY_TLS_VERSION[ordered[0]])]
        parts += [literal("ssl-max-ver"), literal(_HAPROXY_TLS_VERSION[ordered[-1]])]
    protocols = list(dict.fromkeys(alpn))
    for protocol in protocols:
        if protocol not in {p.value for p in AlpnProtocol}:
            raise esc.refuse(f"{what} alpn_protocols", protocol, "unknown ALPN protocol")
    if protocols:
        parts += [literal("alpn"), literal(",".join(protocols))]
    return parts


@cache
def _openssl_selects_some(cipher_list: str) -> bool:
    """Whether OpenSSL (the same library HAProxy links) keeps any cipher of the list: HAProxy
    refuses the whole configuration otherwise. A library call, no I/O."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).set_ciphers(cipher_list)
    except ssl.SSLError:
        return False
    return True


# ---- L7 policies -----------------------------------------------------------------------------


def _l7(fe: _Frontend, lb: LoadBalancer, listener: Listener, listener_id: Cfg) -> list[Pool]:
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
            fe.acls.append(_Acl(rule_id, _criterion(rule)))
            terms.append(Cfg("!" + rule_id) if rule.invert else rule_id)
        guard = [literal("!statera-l7-matched")] if routed else []
        condition = words(*guard, *terms)
        if action is not None:
            fe.policy_rules.append(_PolicyRule(action, condition))
        else:
            pool = lb.pool(policy.redirect_pool_id or "")
            assert pool is not None
            pools.append(pool)
            fe.policy_rules.append(
                _PolicyRule(Cfg(f"set-var(txn.statera_l7) str({policy_id})"), condition)
            )
            fe.pool_policies.append(_Route(_backend_name(pool, listener_id), policy_id))
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
        fetch = Cfg(f"req.hdr({esc.matching(rule.key, _TOKEN, f'{what} key', 'a header name')})")
    elif rtype == L7RuleType.COOKIE:
        fetch = Cfg(f"req.cook({esc.matching(rule.key, _TOKEN, f'{what} key', 'a cookie name')})")
    elif rtype == L7RuleType.SSL_DN_FIELD:
        fetch = Cfg(f"ssl_c_s_dn({esc.matching(rule.key, _DN_FIELD, f'{what} key', 'a DN field')})")
    else:
        raise esc.refuse(what, rtype, "unknown rule type")
    if method == "reg":
        _check_regex(value, what)
    elif rtype in _API_QUOTABLE:
        value = _api_unquoted(value)
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


def _api_unquoted(value: str) -> str:
    """The API accepts header-like values either bare or as a double-quoted string with
    backslash escapes (upstream passed those to HAProxy as-is); match the quoted form's text."""
    if len(value) >= 2 and _API_QUOTED.fullmatch(value):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


# ---- pools -> backends -----------------------------------------------------------------------


def _backend_name(pool: Pool, listener_id: Cfg) -> Cfg:
    return Cfg(f"{esc.object_id(pool.id, 'pool id')}:{listener_id}")


def _backend(pool: Pool, listener: Listener, fe: _Frontend, opts: RenderOptions) -> _Backend:
    what = f"pool {pool.id}"
    if pool.protocol in _HTTP_POOLS:
        mode = "http"
    elif pool.protocol in _TCP_POOLS:
        mode = "tcp"
    elif pool.protocol in _PROXY_POOLS:
        mode = str(fe.mode)
    else:
        raise esc.refuse(what, pool.protocol, "this pool protocol is not served by HAProxy")
    if fe.mode == "http" and mode == "tcp":
        raise esc.refuse(what, pool.protocol, f"an {listener.protocol} listener needs HTTP")
    hm = pool.health_monitor if pool.health_monitor and pool.health_monitor.enabled else None
    persistence, cookie = _persistence(pool, mode, opts, what)
    tls = _server_tls(pool, opts, what)
    proxy = _send_proxy(pool, listener)
    return _Backend(
        name=_backend_name(pool, fe.id),
        mode=literal(mode),
        balance=_balance(pool, mode, what),
        fullconn=fe.maxconn,
        timeout_connect=_ms(
            _or(listener.timeout_member_connect, opts.timeout_member_connect),
            f"listener {listener.id} timeout_member_connect",
        ),
        timeout_server=_ms(
            _or(listener.timeout_member_data, opts.timeout_member_data),
            f"listener {listener.id} timeout_member_data",
        ),
        persistence=persistence,
        health_check=_health_check(hm) if hm else [],
        servers=[_server(m, pool, hm, cookie, proxy, tls) for m in pool.members],
    )


def _balance(pool: Pool, mode: str, what: str) -> list[Cfg]:
    if pool.lb_algorithm == LbAlgorithm.SOURCE_IP_PORT:
        phase = "http-request" if mode == "http" else "tcp-request content"
        return [
            literal(f"{phase} set-var(txn.statera_src_port) src_port"),
            literal("balance hash src,concat(:,txn.statera_src_port)"),
        ]
    algorithm = _BALANCE.get(pool.lb_algorithm)  # type: ignore[call-overload]
    if algorithm is None:
        raise esc.refuse(what, pool.lb_algorithm, "unknown lb_algorithm")
    return [literal(f"balance {algorithm}")]


def _persistence(pool: Pool, mode: str, opts: RenderOptions, what: str) -> tuple[list[Cfg], bool]:
    """Backend lines for session persistence, and whether servers carry a cookie. Cookie
    persistence needs HTTP; the API refuses it elsewhere, so it is simply left out."""
    sp = pool.session_persistence
    if sp is None:
        return [], False
    peers = f" peers {PEERS_SECTION}" if opts.peers else ""
    if sp.type == SessionPersistenceType.SOURCE_IP:
        return [
            literal(f"stick-table type ipv6 size {_STICK_SIZE}{peers}"),
            literal("stick on src"),
        ], False
    if sp.type == SessionPersistenceType.HTTP_COOKIE:
        return (
            ([literal("cookie SRV insert indirect nocache")], True)
            if mode == "http"
            else ([], False)
        )
    if sp.type == SessionPersistenceType.APP_COOKIE:
        name = esc.matching(sp.cookie_name, _TOKEN, f"{what} cookie_name", "a cookie name")
        if mode != "http":
            return [], False
        return [
            literal(f"stick-table type string len 64 size {_STICK_SIZE}{peers}"),
            Cfg(f"stick store-response res.cook({name})"),
            Cfg(f"stick match req.cook({name})"),
        ], False
    raise esc.refuse(what, sp.type, "unknown session persistence type")


def _health_check(hm: HealthMonitor) -> list[Cfg]:
    what = f"health monitor {hm.id}"
    lines = [Cfg(f"timeout check {esc.integer(hm.timeout, f'{what} timeout', 0, 86400)}s")]
    if hm.type in (HealthMonitorType.HTTP, HealthMonitorType.HTTPS):
        method = hm.http_method or "GET"
        if method not in {m.value for m in HttpMethod}:
            raise esc.refuse(what, method, "unknown http_method")
        url_path = hm.url_path or "/"
        esc.plain_text(url_path, f"{what} url_path")
        esc.matching(url_path, _URL_PATH, f"{what} url_path", "a path without blanks")
        version = "1.1" if hm.http_version == 1.1 else "1.0"
        send = [
            literal(f"http-check send meth {method} uri"),
            esc.quoted(url_path, f"{what} url_path"),
            literal(f"ver HTTP/{version}"),
        ]
        if hm.domain_name and version == "1.1":
            send += [
                literal("hdr Host"),
                esc.quoted_log_format(hm.domain_name, f"{what} domain_name"),
            ]
        lines += [
            literal("option httpchk"),
            words(*send),
            words(literal("http-check expect rstatus"), _status_regex(hm, what)),
        ]
    elif hm.type not in (
        HealthMonitorType.TCP,
        HealthMonitorType.TLS_HELLO,
        HealthMonitorType.PING,
    ):
        raise esc.refuse(what, hm.type, "this monitor type is not served by HAProxy")
    return lines


def _status_regex(hm: HealthMonitor, what: str) -> Cfg:
    """expected_codes ("200", "200,202", "200-204") as an anchored alternation of codes."""
    codes = hm.expected_codes or "200"
    esc.matching(
        codes, _EXPECTED_CODES, f"{what} expected_codes", "codes such as 200, 200,202 or 200-204"
    )
    alternatives: list[str] = []
    for part in codes.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first > last:
            raise esc.refuse(f"{what} expected_codes", codes, "a range must go upwards")
        alternatives += [str(c) for c in range(first, last + 1)]
    return esc.quoted("^(?:" + "|".join(dict.fromkeys(alternatives)) + ")$", what)


def _send_proxy(pool: Pool, listener: Listener) -> Cfg | None:
    if pool.protocol == PoolProtocol.PROXY:
        return literal("send-proxy")
    if pool.protocol == PoolProtocol.PROXYV2:
        if listener.protocol == ListenerProtocol.TERMINATED_HTTPS:
            return literal("send-proxy-v2-ssl-cn")
        return literal("send-proxy-v2")
    return None


def _server_tls(pool: Pool, opts: RenderOptions, what: str) -> Cfg | None:
    """Re-encryption towards the members (``tls_enabled``)."""
    if not pool.tls_enabled:
        return None
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    parts = [literal("ssl")]
    if pool.ca_tls_certificate_id:
        parts += [
            literal("verify required ca-file"),
            _cert_path(cert_dir, pool.ca_tls_certificate_id, what),
        ]
        if pool.crl_container_id:
            parts += [literal("crl-file"), _cert_path(cert_dir, pool.crl_container_id, what)]
    else:
        parts.append(literal("verify none"))
    if pool.tls_certificate_id:
        parts += [literal("crt"), _cert_path(cert_dir, pool.tls_certificate_id, what)]
    parts += _tls_options(pool.tls_ciphers, pool.tls_versions, pool.alpn_protocols, what)
    return words(*parts)


def _server(
    member: Member,
    pool: Pool,
    hm: HealthMonitor | None,
    cookie: bool,
    proxy: Cfg | None,
    tls: Cfg | None,
) -> Cfg:
    what = f"member {member.id}"
    member_id = esc.object_id(member.id, "member id")
    parts: list[Cfg | None] = [
        member_id,
        esc.address_port(member.address, member.protocol_port, what),
        literal("weight"),
        esc.integer(member.weight, f"{what} weight", 0, 256),
    ]
    if hm is not None:
        check = f"health monitor {hm.id}"
        delay = int(esc.integer(hm.delay, f"{check} delay", 0, 86400))
        parts += [
            literal("check inter"),
            Cfg(f"{max(delay, 1)}s"),
            literal("fall"),
            esc.integer(hm.max_retries_down, f"{check} max_retries_down", 1, 100),
            literal("rise"),
            esc.integer(hm.max_retries, f"{check} max_retries", 1, 100),
        ]
        if member.monitor_address:
            ip = esc.ip_address(member.monitor_address, f"{what} monitor_address")
            parts += [literal("addr"), Cfg(str(ip))]
        if member.monitor_port:
            parts += [
                literal("port"),
                esc.integer(member.monitor_port, f"{what} monitor_port", 1, 65535),
            ]
        if hm.type in (HealthMonitorType.HTTPS, HealthMonitorType.TLS_HELLO):
            # A re-encrypting server's own verify setting covers its checks too.
            parts.append(literal("check-ssl" if tls else "check-ssl verify none"))
    if cookie:
        parts += [literal("cookie"), member_id]
    parts.append(proxy)
    if member.backup:
        parts.append(literal("backup"))
    if not (member.enabled and pool.enabled):
        parts.append(literal("disabled"))
    parts.append(tls)
    return words(*parts)
