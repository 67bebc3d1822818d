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
* PROMETHEUS listeners forward ``/metrics`` to the metrics proxy (statera.agent.prometheus,
  which renames HAProxy's exporter into upstream's ``octavia_*`` names). Upstream's amphora
  runs that proxy as a service of its own; here HAProxy's master runs it as a ``program``
  (hence ``master-worker`` in ``global``), in the load balancer's namespace, and replaces it
  on every reload, so the agent has nothing to start or stop.
* The global ``maxconn`` is kept within the file descriptors HAProxy may open
  (``RenderOptions.fd_limit``): a config that needs more fails to load (or to reload).
* A monitor ``delay`` of 0 is rendered as ``inter 1s`` (HAProxy refuses 0).
* Non-contiguous ``tls_versions`` are rendered as their span: HAProxy ignores ``no-tlsv1x``
  next to ``ssl-min-ver``/``ssl-max-ver``.

The parts live beside this module: haproxy_view.py (the view and the words every part shares),
haproxy_tls.py (TLS binds and servers, HSTS), haproxy_l7.py (L7 policies and rules) and
haproxy_backend.py (pools, members, monitors, persistence). This module keeps the entry
points, the global section, peers and the frontends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from statera.domain.enums import ListenerProtocol
from statera.domain.model import Listener, LoadBalancer, Pool
from statera.render import escape as esc
from statera.render.escape import Cfg, RenderError, literal
from statera.render.haproxy_backend import backend
from statera.render.haproxy_l7 import MAX_RULES_PER_POLICY as MAX_RULES_PER_POLICY
from statera.render.haproxy_l7 import l7_policies
from statera.render.haproxy_tls import (
    bind_tls,
    cert_path,
    hsts,
    server_certificates,
    terminates_tls,
)
from statera.render.haproxy_view import (
    MAX_CONNECTIONS,
    PEERS_SECTION,
    Backend,
    Frontend,
    Header,
    Peer,
    backend_name,
    ms,
    or_default,
    words,
)
from statera.render.options import RenderOptions, crt_list_file
from statera.render.templating import TEMPLATES

__all__ = ["RenderError", "crt_list_path", "render_crt_list", "render_haproxy_config"]

_CIDRS_PER_LINE = 32
# What HAProxy opens besides its connections: pollers, wake-up pipes, the stats and master
# sockets, log sockets, resolvers... (a few dozen in 2.6), with room to spare.
_FD_RESERVE = 200

_HTTP_FRONTENDS = frozenset({"HTTP", "TERMINATED_HTTPS", "PROMETHEUS"})
_TCP_FRONTENDS = frozenset({"TCP", "HTTPS"})
_LVS_PROTOCOLS = frozenset({"UDP", "SCTP"})

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
_DURATION = re.compile(r"[0-9]{1,9}(?:us|ms|s|m|h|d)?")
# A unix socket path, or [proto@]address[:port]: never something HAProxy reads as an option.
_LOG_TARGET = re.compile(
    r"/[A-Za-z0-9._/-]{1,254}|(?:(?:udp|udp4|udp6|tcp|tcp4|tcp6|unix|ipv4|ipv6)@)?"
    r"[A-Za-z0-9\[][A-Za-z0-9._:/\[\]-]{0,253}"
)
_COMMAND_WORD = re.compile(r"[A-Za-z0-9._/:=,+@-]{1,255}")
_LOG_FIELDS = re.compile(r"\{(project_id|lb_id)\}")
# Log-format variables HAProxy reserves for HTTP mode (a TCP frontend refuses them), and
# literal "%%" which must be skipped over when looking for them.
_HTTP_LOG_VARIABLES = re.compile(
    r"%%|%(?:\{[^}]*\})?(?:HPO|HM|HP|HQ|HU|HV|CC|CS|hrl|hsl|hr|hs|r)(?![A-Za-z0-9_])"
)


_ENV = TEMPLATES


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
    frontends: list[Frontend] = []
    backends: list[Backend] = []
    for listener in listeners:
        frontend, pools = _frontend(lb, listener, vips, opts)
        frontends.append(frontend)
        backends.extend(backend(pool, listener, frontend, opts) for pool in pools)
    prometheus = opts.prometheus_port and any(
        li.protocol == ListenerProtocol.PROMETHEUS for li in listeners
    )
    exporter = (
        esc.address_port("127.0.0.1", opts.prometheus_port, "prometheus_port")
        if prometheus
        else None
    )
    total = sum(int(fe.maxconn) for fe in frontends) or opts.default_connection_limit
    if opts.global_maxconn_cap:
        total = min(total, opts.global_maxconn_cap)
    if opts.fd_limit is not None:
        binds = sum(len(fe.binds) for fe in frontends)
        servers = sum(len(be.servers) for be in backends)
        total = min(total, fd_bound(opts.fd_limit, binds + servers))
    text = _ENV.get_template("haproxy.cfg.j2").render(
        lb_id=lb_id,
        g=_global_view(opts, min(total, MAX_CONNECTIONS)),
        peers=_peers(opts),
        peers_section=literal(PEERS_SECTION),
        prometheus_internal=exporter,
        prometheus_proxy=_prometheus_proxy(opts, exporter) if exporter else None,
        frontends=frontends,
        backends=backends,
    )
    return text


def fd_bound(fd_limit: int, sockets: int) -> int:
    """The largest global maxconn whose file descriptors fit in ``fd_limit``. HAProxy 2.6
    counts two sockets per connection and, because the defaults splice, a pipe (two
    descriptors) per four connections: 2.5 per connection. ``sockets`` are the config's
    other long-lived descriptors (one per bind, one per server for its checks)."""
    return max(1, (fd_limit - _FD_RESERVE - sockets) * 2 // 5)


def crt_list_path(listener: Listener, opts: RenderOptions) -> Cfg:
    """Where the agent must write ``render_crt_list(listener, opts)``."""
    listener_id = esc.object_id(listener.id, "listener id")
    return esc.join_path(esc.path(opts.cert_dir, "cert_dir"), crt_list_file(listener_id))


def render_crt_list(listener: Listener, opts: RenderOptions) -> str:
    """The crt-list of a TLS-terminating listener: the default certificate first (HAProxy
    serves it when no SNI matches), then the SNI certificates, one PEM path per line;
    HAProxy picks among them by the names inside each certificate."""
    what = f"listener {listener.id}"
    refs = server_certificates(listener, what)
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    return "".join(cert_path(cert_dir, ref, what) + "\n" for ref in refs)


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
        "timeout_connect": ms(opts.timeout_member_connect, "timeout_member_connect"),
        "timeout_client": ms(opts.timeout_client_data, "timeout_client_data"),
        "timeout_server": ms(opts.timeout_member_data, "timeout_member_data"),
    }


def _peers(opts: RenderOptions) -> list[Peer]:
    peers = [
        Peer(esc.name(name, "peer name"), esc.address_port(ip, port, f"peer {name}"))
        for name, ip, port in opts.peers
    ]
    if peers and opts.local_peer is not None and opts.local_peer not in {p.name for p in peers}:
        raise esc.refuse("local_peer", opts.local_peer, "it must be one of the peers")
    return peers


def _prometheus_proxy(opts: RenderOptions, exporter: Cfg) -> dict[str, Cfg] | None:
    """The metrics proxy's address and command line, or None when there is none."""
    if not opts.prometheus_proxy_port:
        return None
    listen = esc.address_port("127.0.0.1", opts.prometheus_proxy_port, "prometheus_proxy_port")
    if not opts.prometheus_proxy_command:
        raise esc.refuse("prometheus_proxy_command", (), "a program is required")
    program, *args = opts.prometheus_proxy_command
    command = [esc.path(program, "prometheus_proxy_command")]
    command += [esc.matching(a, _COMMAND_WORD, "prometheus_proxy_command", "plain words")
                for a in args]
    command += [literal("--listen"), listen, literal("--exporter"), exporter]
    return {"address": listen, "command": words(*command)}


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
) -> tuple[Frontend, list[Pool]]:
    what = f"listener {listener.id}"
    listener_id = esc.object_id(listener.id, "listener id")
    http = listener.protocol in _HTTP_FRONTENDS
    tls = (
        bind_tls(listener, opts, crt_list_path(listener, opts), what)
        if terminates_tls(listener)
        else None
    )
    fe = Frontend(
        id=listener_id,
        mode=literal("http" if http else "tcp"),
        maxconn=_connection_limit(listener, opts),
        binds=[
            words(esc.address_port(ip, listener.protocol_port, f"{what} VIP"), tls) for ip in vips
        ],
        timeout_client=ms(
            or_default(listener.timeout_client_data, opts.timeout_client_data),
            f"{what} timeout_client_data",
        ),
    )
    inspect = or_default(listener.timeout_tcp_inspect, opts.timeout_tcp_inspect)
    if inspect:
        fe.inspect_delay = ms(inspect, f"{what} timeout_tcp_inspect")
    if opts.log_target is not None and opts.connection_logging:
        fe.log_format = _log_format(lb, opts, http)
    fe.allowed_sources = _allowed_sources(listener, what)
    if listener.protocol == ListenerProtocol.PROMETHEUS:
        fe.prometheus = True
        return fe, []
    pools: list[Pool] = []
    if http:
        _insert_headers(fe, listener, what)
        fe.hsts = hsts(listener, what)
        pools = l7_policies(fe, lb, listener, listener_id)
    default = lb.pool(listener.default_pool_id) if listener.default_pool_id else None
    if default is not None:
        fe.default_backend = backend_name(default, listener_id)
        pools.insert(0, default)
    elif http:
        fe.unrouted = literal(
            "http-request return status 503"
            + (" unless statera-l7-matched" if fe.pool_policies else "")
        )
    else:
        fe.unrouted = literal("tcp-request connection reject")
    return fe, list({p.id: p for p in pools}.values())


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


def _insert_headers(fe: Frontend, listener: Listener, what: str) -> None:
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
    fe.request_headers = [Header(literal(name), literal(fmt)) for name, fmt in lines]
