"""Pools as ``backend <pool_id>:<listener_id>`` sections: balancing, session persistence,
health monitors and one ``server`` line per member (see haproxy.py for where these differ
from upstream).
"""

from __future__ import annotations

import re

from statera.domain.enums import (
    HealthMonitorType,
    HttpMethod,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from statera.domain.model import HealthMonitor, Listener, Member, Pool
from statera.render import escape as esc
from statera.render.escape import Cfg, literal
from statera.render.haproxy_tls import server_tls
from statera.render.haproxy_view import (
    HTTP_TOKEN,
    PEERS_SECTION,
    Backend,
    Frontend,
    backend_name,
    ms,
    or_default,
    words,
)
from statera.render.options import RenderOptions

_STICK_SIZE = "10k"
_HTTP_POOLS = frozenset({"HTTP"})
_TCP_POOLS = frozenset({"TCP", "HTTPS"})
_PROXY_POOLS = frozenset({"PROXY", "PROXYV2"})
_BALANCE = {
    LbAlgorithm.ROUND_ROBIN: "roundrobin",
    LbAlgorithm.LEAST_CONNECTIONS: "leastconn",
    LbAlgorithm.SOURCE_IP: "source",
}
_CODE_OR_RANGE = r"[1-5][0-9]{2}(?:-[1-5][0-9]{2})?"
_EXPECTED_CODES = re.compile(rf"{_CODE_OR_RANGE}(?:,{_CODE_OR_RANGE}){{0,99}}")
_URL_PATH = re.compile(r"/[\x21-\x7e]{0,4095}")


def backend(pool: Pool, listener: Listener, fe: Frontend, opts: RenderOptions) -> Backend:
    """The backend of ``pool`` as used by ``listener`` (whose frontend is ``fe``)."""
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
    tls = server_tls(pool, opts, what)
    proxy = _send_proxy(pool, listener)
    return Backend(
        name=backend_name(pool, fe.id),
        mode=literal(mode),
        balance=_balance(pool, mode, what),
        fullconn=fe.maxconn,
        timeout_connect=ms(
            or_default(listener.timeout_member_connect, opts.timeout_member_connect),
            f"listener {listener.id} timeout_member_connect",
        ),
        timeout_server=ms(
            or_default(listener.timeout_member_data, opts.timeout_member_data),
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
        name = esc.matching(sp.cookie_name, HTTP_TOKEN, f"{what} cookie_name", "a cookie name")
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
