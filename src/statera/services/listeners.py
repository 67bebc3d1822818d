"""Listeners: protocol rules, TLS settings, header insertion, allowed CIDRs, default pools,
and the create/read/update/delete of listeners on a load balancer.

TLS container references are stored as given (any URL- or id-shaped string): the secret store
that resolves them arrives later.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import (
    HTTP_HEADERS,
    SSL_HEADERS,
    TLS_VERSION_ORDER,
    AlpnProtocol,
    ClientAuthentication,
    ListenerProtocol,
    OperatingStatus,
    ProvisioningStatus,
    l4_family,
)
from statera.domain.errors import DuplicateEntry, InvalidInput, NotFound
from statera.services import common, l7policies, listing
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.l7rules import check_text, invalid
from statera.services.loadbalancers import scope_to_project, sum_stats

MAX_TIMEOUT = 2073600000  # 24 days in milliseconds, as upstream
TLS = ListenerProtocol.TERMINATED_HTTPS
HEADER_PROTOCOLS = (ListenerProtocol.HTTP, ListenerProtocol.TERMINATED_HTTPS)
TIMEOUTS = (
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
    "timeout_tcp_inspect",
)
REFS = ("default_tls_container_ref", "client_ca_tls_container_ref", "client_crl_container_ref")
# Settings that only mean something when the listener terminates TLS.
TLS_ONLY = (
    *REFS,
    "sni_container_refs",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
    "hsts_max_age",
)
# Everything the state dict of a listener carries (API names).
STATE_KEYS = frozenset(
    {
        "connection_limit",
        *TIMEOUTS,
        *TLS_ONLY,
        "client_authentication",
        "insert_headers",
        "allowed_cidrs",
        "hsts_include_subdomains",
        "hsts_preload",
        "default_pool_id",
    }
)
_PROTOCOLS = frozenset(p.value for p in ListenerProtocol)
_AUTH = frozenset(a.value for a in ClientAuthentication)
_ALPN = frozenset(a.value for a in AlpnProtocol)
_HEADER_NAMES = {h.lower(): h for h in HTTP_HEADERS | SSL_HEADERS}
# RFC 3986 characters: a Barbican URL, a secret id, or a local reference.
_REF = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# OpenSSL cipher-string characters (reliability-security §3.6).
_CIPHERS = re.compile(r"[A-Za-z0-9\-+!:@=_.]+")

LISTING = listing.Listing(
    model=m.Listener,
    columns={
        "id": m.Listener.id,
        "name": m.Listener.name,
        "description": m.Listener.description,
        "provisioning_status": m.Listener.provisioning_status,
        "operating_status": m.Listener.operating_status,
        "admin_state_up": m.Listener.enabled,
        "project_id": m.Listener.project_id,
        "tenant_id": m.Listener.project_id,
        "created_at": m.Listener.created_at,
        "updated_at": m.Listener.updated_at,
        "protocol": m.Listener.protocol,
        "protocol_port": m.Listener.protocol_port,
        "connection_limit": m.Listener.connection_limit,
        "default_pool_id": m.Listener.default_pool_id,
        "loadbalancer_id": m.Listener.load_balancer_id,
        "default_tls_container_ref": m.Listener.tls_certificate_id,
        "client_ca_tls_container_ref": m.Listener.client_ca_tls_certificate_id,
        "client_crl_container_ref": m.Listener.client_crl_container_id,
        "client_authentication": m.Listener.client_authentication,
        **{t: getattr(m.Listener, t) for t in TIMEOUTS},
        "tls_ciphers": m.Listener.tls_ciphers,
        "hsts_max_age": m.Listener.hsts_max_age,
        "hsts_include_subdomains": m.Listener.hsts_include_subdomains,
        "hsts_preload": m.Listener.hsts_preload,
    },
)

# What presenting a listener reads; loaded up front because sessions close early.
LOAD = (
    selectinload(m.Listener.l7policies).load_only(m.L7Policy.id),
    selectinload(m.Listener.sni_containers),
    selectinload(m.Listener.allowed_cidrs),
)


# ---- validation ------------------------------------------------------------------------------


def _check_protocol(deps: Deps, protocol: str) -> None:
    api = deps.settings.api_settings
    if protocol not in _PROTOCOLS:
        raise invalid("protocol", protocol, f"Value should be one of {sorted(_PROTOCOLS)}.")
    if protocol in (ListenerProtocol.UDP, ListenerProtocol.SCTP):
        raise invalid("protocol", protocol, "UDP/SCTP listeners are not supported yet.")
    if protocol == TLS and not api.allow_tls_terminated_listeners:
        raise invalid(
            "protocol", protocol, "TERMINATED_HTTPS listeners are not allowed in this deployment."
        )
    if protocol == ListenerProtocol.PROMETHEUS and not api.allow_prometheus_listeners:
        raise invalid(
            "protocol", protocol, "PROMETHEUS listeners are not allowed in this deployment."
        )


def _check_int(field: str, value: Any, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(field, value, f"An integer {bound} is required.")
    return value


def _check_ref(field: str, ref: Any) -> None:
    check_text(field, ref)
    if not _REF.fullmatch(ref):
        raise invalid(field, ref, "A container reference is a URL or an id without spaces.")


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _vip_versions(lb: m.LoadBalancer) -> set[int]:
    addresses = [lb.vip.ip_address] if lb.vip is not None else []
    addresses += [av.ip_address for av in lb.additional_vips]
    return {ipaddress.ip_address(a).version for a in addresses if a}


def _check_values(deps: Deps, lb: m.LoadBalancer, st: dict[str, Any], given: set[str]) -> None:
    """Check (and normalise in ``st``) the values the client sent."""
    api = deps.settings.api_settings
    if "connection_limit" in given:
        _check_int("connection_limit", st["connection_limit"], -1)
    for field in TIMEOUTS:
        if field in given:
            _check_int(field, st[field], 0, MAX_TIMEOUT)
    if "hsts_max_age" in given and st["hsts_max_age"] is not None:
        _check_int("hsts_max_age", st["hsts_max_age"], 0)
    for field in REFS:
        if field in given and st[field] is not None:
            _check_ref(field, st[field])
    if "sni_container_refs" in given:
        for ref in st["sni_container_refs"]:
            _check_ref("sni_container_refs", ref)
        st["sni_container_refs"] = _unique(st["sni_container_refs"])
    if "client_authentication" in given and st["client_authentication"] not in _AUTH:
        raise invalid(
            "client_authentication",
            st["client_authentication"],
            f"Value should be one of {sorted(_AUTH)}.",
        )
    if "tls_ciphers" in given and st["tls_ciphers"] is not None:
        ciphers = st["tls_ciphers"]
        check_text("tls_ciphers", ciphers, max_length=2048)
        if not _CIPHERS.fullmatch(ciphers):
            raise invalid(
                "tls_ciphers",
                ciphers,
                "An OpenSSL cipher string may only contain letters, digits and -+!:@=_.",
            )
        banned = [c for c in ciphers.split(":") if c in set(api.tls_cipher_prohibit_list)]
        if banned:
            raise InvalidInput(
                "The following ciphers have been prohibited by an "
                f"administrator: {', '.join(banned)}"
            )
    if "tls_versions" in given and st["tls_versions"] is not None:
        st["tls_versions"] = _check_tls_versions(deps, st["tls_versions"])
    if "alpn_protocols" in given and st["alpn_protocols"] is not None:
        protocols = [str(p) for p in st["alpn_protocols"]]
        if not protocols:
            raise invalid(
                "alpn_protocols",
                [],
                "Give at least one ALPN protocol, or leave the attribute out for the default.",
            )
        for proto in protocols:
            if proto not in _ALPN:
                raise invalid("alpn_protocols", proto, f"Value should be one of {sorted(_ALPN)}.")
        st["alpn_protocols"] = _unique(protocols)
    if "insert_headers" in given:
        st["insert_headers"] = _canonical_headers(st["insert_headers"])
    if "allowed_cidrs" in given:
        st["allowed_cidrs"] = _check_cidrs(lb, st["allowed_cidrs"])


def _check_tls_versions(deps: Deps, versions: list[Any]) -> list[str]:
    wanted = [str(v) for v in versions]
    if not wanted:
        raise invalid(
            "tls_versions",
            [],
            "Give at least one TLS version, or leave the attribute out for the default.",
        )
    minimum = deps.settings.api_settings.minimum_tls_version
    for version in wanted:
        if version not in TLS_VERSION_ORDER:
            raise invalid(
                "tls_versions", version, f"Value should be one of {', '.join(TLS_VERSION_ORDER)}."
            )
        if minimum and TLS_VERSION_ORDER.index(version) < TLS_VERSION_ORDER.index(minimum):
            raise invalid(
                "tls_versions",
                version,
                f"TLS versions below {minimum} are not allowed in this deployment.",
            )
    return _unique(wanted)


def _canonical_headers(headers: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, flag in headers.items():
        canonical = _HEADER_NAMES.get(str(name).lower())
        if canonical is None:
            raise invalid(
                "insert_headers",
                name,
                f"Supported headers are {', '.join(sorted(HTTP_HEADERS | SSL_HEADERS))}.",
            )
        if not isinstance(flag, str) or flag.lower() not in ("true", "false"):
            raise invalid(
                "insert_headers",
                flag,
                f"The value of {canonical} must be the string 'true' or 'false'.",
            )
        out[canonical] = flag
    return out


def _check_cidrs(lb: m.LoadBalancer, cidrs: list[Any]) -> list[str]:
    versions = _vip_versions(lb)
    out: list[str] = []
    for raw in cidrs:
        try:
            net = ipaddress.ip_network(
                check_text("allowed_cidrs", raw, max_length=64), strict=False
            )
        except ValueError:
            raise invalid(
                "allowed_cidrs", raw, "A CIDR such as 192.0.2.0/24 is required."
            ) from None
        if versions and net.version not in versions:
            raise invalid(
                "allowed_cidrs",
                raw,
                f"The CIDR is IPv{net.version} but the load "
                f"balancer's VIPs are IPv{'/'.join(map(str, sorted(versions)))}.",
            )
        out.append(str(net))
    return _unique(out)


def _check_state(st: dict[str, Any]) -> None:
    """Rules across fields, on the listener as it would be after the change."""
    protocol = st["protocol"]
    if protocol != TLS:
        for field in TLS_ONLY:
            if st[field] is not None and st[field] != []:
                raise invalid(
                    field, st[field], f"{field} is only valid for TERMINATED_HTTPS listeners."
                )
        if st["client_authentication"] != ClientAuthentication.NONE:
            raise invalid(
                "client_authentication",
                st["client_authentication"],
                "Client authentication is only valid for TERMINATED_HTTPS listeners.",
            )
        if st["hsts_include_subdomains"] or st["hsts_preload"]:
            raise InvalidInput("HSTS can only be used on TERMINATED_HTTPS listeners.")
    else:
        if not st["default_tls_container_ref"] and not st["sni_container_refs"]:
            raise InvalidInput(
                "An SNI or default certificate container reference must be "
                "provided for TERMINATED_HTTPS listeners."
            )
        if (
            st["client_authentication"] != ClientAuthentication.NONE
            and not st["client_ca_tls_container_ref"]
        ):
            raise InvalidInput(
                f"Client authentication {st['client_authentication']} needs a "
                "client_ca_tls_container_ref."
            )
        if st["client_crl_container_ref"] and not st["client_ca_tls_container_ref"]:
            raise InvalidInput("A client_crl_container_ref needs a client_ca_tls_container_ref.")
        if (st["hsts_include_subdomains"] or st["hsts_preload"]) and st["hsts_max_age"] is None:
            raise InvalidInput("hsts_include_subdomains and hsts_preload need hsts_max_age.")
    headers = st["insert_headers"]
    if headers and protocol not in HEADER_PROTOCOLS:
        raise invalid(
            "insert_headers",
            headers,
            "Header insertion is only valid for HTTP and TERMINATED_HTTPS listeners.",
        )
    ssl_headers = sorted(set(headers) & SSL_HEADERS)
    if ssl_headers and protocol != TLS:
        raise invalid(
            "insert_headers",
            ssl_headers[0],
            "SSL client headers are only valid for TERMINATED_HTTPS listeners.",
        )


def _defaults(deps: Deps, st: dict[str, Any]) -> None:
    """Fill what was left null with the deployment's defaults."""
    hp = deps.settings.haproxy_amphora
    for field in TIMEOUTS:
        if st[field] is None:
            st[field] = getattr(hp, field)
    if st["connection_limit"] is None:
        st["connection_limit"] = -1
    if st["client_authentication"] is None:
        st["client_authentication"] = ClientAuthentication.NONE.value
    for field in ("sni_container_refs", "allowed_cidrs"):
        st[field] = list(st[field] or [])
    st["insert_headers"] = dict(st["insert_headers"] or {})
    for field in ("hsts_include_subdomains", "hsts_preload"):
        st[field] = bool(st[field])


def _tls_defaults(deps: Deps, st: dict[str, Any]) -> None:
    api = deps.settings.api_settings
    if st["protocol"] != TLS:
        return
    if st["tls_ciphers"] is None:
        st["tls_ciphers"] = api.default_listener_ciphers
    if st["tls_versions"] is None:
        st["tls_versions"] = list(api.default_listener_tls_versions)
    if st["alpn_protocols"] is None:
        st["alpn_protocols"] = list(api.default_listener_alpn_protocols)


def _state_of(li: m.Listener) -> dict[str, Any]:
    st: dict[str, Any] = {
        field: getattr(li, field)
        for field in (
            "protocol",
            "connection_limit",
            *TIMEOUTS,
            "client_authentication",
            "tls_ciphers",
            "tls_versions",
            "alpn_protocols",
            "hsts_max_age",
            "hsts_include_subdomains",
            "hsts_preload",
            "default_pool_id",
        )
    }
    st.update(
        default_tls_container_ref=li.tls_certificate_id,
        client_ca_tls_container_ref=li.client_ca_tls_certificate_id,
        client_crl_container_ref=li.client_crl_container_id,
        sni_container_refs=[s.tls_container_id for s in li.sni_containers],
        allowed_cidrs=[c.cidr for c in li.allowed_cidrs],
        insert_headers=dict(li.insert_headers or {}),
    )
    return st


def _apply(li: m.Listener, st: dict[str, Any]) -> None:
    for field in (
        "connection_limit",
        *TIMEOUTS,
        "client_authentication",
        "tls_ciphers",
        "tls_versions",
        "alpn_protocols",
        "hsts_max_age",
        "hsts_include_subdomains",
        "hsts_preload",
    ):
        setattr(li, field, st[field])
    li.client_authentication = str(st["client_authentication"])
    li.tls_certificate_id = st["default_tls_container_ref"]
    li.client_ca_tls_certificate_id = st["client_ca_tls_container_ref"]
    li.client_crl_container_id = st["client_crl_container_ref"]
    li.insert_headers = st["insert_headers"] or None
    # Keep rows that stay (same primary key), so a flush never deletes and re-inserts them.
    snis = {s.tls_container_id: s for s in li.sni_containers}
    li.sni_containers = [
        snis.get(ref) or m.SNI(tls_container_id=ref, position=i)
        for i, ref in enumerate(st["sni_container_refs"])
    ]
    for i, sni in enumerate(li.sni_containers):
        sni.position = i
    cidrs = {c.cidr: c for c in li.allowed_cidrs}
    li.allowed_cidrs = [cidrs.get(c) or m.ListenerCidr(cidr=c) for c in st["allowed_cidrs"]]


def _check_default_pool(session: Session, lb: m.LoadBalancer, protocol: str, pool_id: str) -> None:
    pool = session.get(m.Pool, pool_id)
    if (
        pool is None
        or pool.load_balancer_id != lb.id
        or pool.provisioning_status == ProvisioningStatus.DELETED
    ):
        raise NotFound(resource="Pool", id=pool_id)
    l7policies.check_pool_protocol(protocol, pool.protocol)


def _check_port_free(lb: m.LoadBalancer, protocol: str, port: int) -> None:
    for other in lb.listeners:
        if (
            other.protocol_port == port
            and l4_family(other.protocol) == l4_family(protocol)
            and other.provisioning_status != ProvisioningStatus.DELETED
        ):
            raise DuplicateEntry(
                resource="Listener", parent="Load Balancer", what=f"protocol_port {port}"
            )


# ---- building ------------------------------------------------------------------------------


def build_listener(
    session: Session, deps: Deps, lb: m.LoadBalancer, data: dict[str, Any], *, graph: GraphBuild
) -> m.Listener:
    """Validate ``data`` and add a listener (PENDING_CREATE) to ``lb``, with the default
    pool and L7 policies given inline."""
    protocol = str(data.get("protocol"))
    _check_protocol(deps, protocol)
    port = _check_int("protocol_port", data.get("protocol_port"), 1, 65535)
    for field in ("name", "description"):
        if data.get(field) is not None:
            check_text(field, data[field])
    st = {key: data.get(key) for key in STATE_KEYS}
    st["protocol"] = protocol
    given = {key for key in STATE_KEYS if data.get(key) is not None}
    _check_values(deps, lb, st, given)
    _defaults(deps, st)
    _check_state(st)
    _tls_defaults(deps, st)
    nested_pool = data.get("default_pool")
    if nested_pool is not None and st["default_pool_id"] is not None:
        raise InvalidInput("Give either default_pool_id or default_pool, not both.")
    if st["default_pool_id"] is not None:
        _check_default_pool(session, lb, protocol, st["default_pool_id"])
    _check_port_free(lb, protocol, port)

    listener = m.Listener(
        id=new_id(),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        name=data.get("name"),
        description=data.get("description"),
        protocol=protocol,
        protocol_port=port,
        enabled=data.get("admin_state_up") is not False,
        default_pool_id=st["default_pool_id"],
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
    )
    _apply(listener, st)
    lb.listeners.append(listener)
    graph.add("listener", listener)
    if nested_pool is not None:
        _nested_default_pool(session, deps, lb, listener, nested_pool, graph)
    for policy_data in data.get("l7policies") or []:
        l7policies.build_l7policy(session, deps, lb, listener, policy_data, graph=graph)
    if data.get("tags"):
        session.flush()
        common.set_tags(session, listener.id, data["tags"])
    return listener


def _nested_default_pool(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    listener: m.Listener,
    pool_data: dict[str, Any],
    graph: GraphBuild,
) -> None:
    """A default pool given inline: a name listed under the LB's ``pools``, or a new pool."""
    name = pool_data.get("name")
    if pool_data.get("protocol") is None and name in graph.pools_by_name:
        pool = graph.pools_by_name[name]
        l7policies.check_pool_protocol(listener.protocol, pool.protocol)
        listener.default_pool_id = pool.id
        return
    if listener.protocol == ListenerProtocol.PROMETHEUS:
        raise InvalidInput("PROMETHEUS listeners cannot send traffic to a pool.")
    from statera.services import pools

    pools.build_pool(session, deps, lb, pool_data, listener=listener, graph=graph)


# ---- operations ----------------------------------------------------------------------------


def _lock(session: Session, listener_id: str) -> tuple[m.LoadBalancer, m.Listener]:
    lb_id = session.scalar(
        sa.select(m.Listener.load_balancer_id).where(m.Listener.id == listener_id)
    )
    if lb_id is None:
        raise NotFound(resource="Listener", id=listener_id)
    lb = common.lock_load_balancer(session, lb_id)
    return lb, common.get_or_404(session, m.Listener, listener_id)


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.Listener:
    def work(session: Session) -> str:
        lb = common.lock_load_balancer(session, data["loadbalancer_id"])
        authorize(ctx, "listener:post", lb.project_id)
        common.require_mutable(lb)
        graph = GraphBuild(single_call=False)
        listener = build_listener(session, deps, lb, data, graph=graph)
        common.check_quota(session, deps, lb.project_id, graph.counts, being_created=graph.created)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb)
        common.enqueue_child_change(session, ctx, lb, "listener", listener.id, "create")
        return listener.id

    listener_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, listener_id, check=False)


def get(deps: Deps, ctx: RequestContext, listener_id: str, *, check: bool = True) -> m.Listener:
    with deps.db.read() as session:
        listener = common.get_or_404(session, m.Listener, listener_id, options=LOAD)
        if check:
            authorize(ctx, "listener:get_one", listener.project_id)
        common.attach_tags(session, [listener])
        return listener


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    authorize(ctx, "listener:get_all", ctx.project_id)
    with deps.db.read() as session:
        stmt = sa.select(m.Listener).where(
            m.Listener.provisioning_status != ProvisioningStatus.DELETED
        )
        stmt = scope_to_project(stmt, ctx, "listener", m.Listener.project_id, params)
        stmt = listing.apply_filters(stmt, LISTING, params)
        page = listing.paginate(
            session,
            stmt,
            LISTING,
            params,
            max_limit=deps.settings.api_settings.pagination_max_limit,
            base_url=base_url,
            options=LOAD,
        )
        common.attach_tags(session, page.items)
        return page


def update(
    deps: Deps, ctx: RequestContext, listener_id: str, changes: dict[str, Any]
) -> m.Listener:
    def work(session: Session) -> None:
        lb, listener = _lock(session, listener_id)
        authorize(ctx, "listener:put", lb.project_id)
        common.require_mutable(lb, listener)
        st = _state_of(listener)
        given = set(changes) & STATE_KEYS
        for key in given:
            st[key] = changes[key]
        # A null resets a setting to its default (TLS ones only on TLS listeners).
        _check_values(deps, lb, st, {k for k in given if changes[k] is not None})
        _defaults(deps, st)
        _check_state(st)
        _tls_defaults(deps, st)
        if changes.get("default_pool_id") is not None:
            _check_default_pool(session, lb, listener.protocol, changes["default_pool_id"])
        _apply(listener, st)
        if "default_pool_id" in changes:
            listener.default_pool_id = changes["default_pool_id"]
        for field in ("name", "description"):
            if field in changes:
                setattr(listener, field, changes[field])
        if "admin_state_up" in changes:
            if changes["admin_state_up"] is None:
                raise invalid("admin_state_up", None, "A boolean is required.")
            listener.enabled = changes["admin_state_up"]
        if "tags" in changes:
            common.set_tags(session, listener.id, changes["tags"])
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.enqueue_child_change(
            session, ctx, lb, "listener", listener.id, "update", {"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, listener_id, check=False)


def delete(deps: Deps, ctx: RequestContext, listener_id: str) -> None:
    def work(session: Session) -> None:
        lb, listener = _lock(session, listener_id)
        authorize(ctx, "listener:delete", lb.project_id)
        common.require_mutable(lb, listener)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb)
        # The listener's L7 policies and rules go with it.
        for policy in listener.l7policies:
            common.mark(ProvisioningStatus.PENDING_DELETE, policy, *policy.rules)
        common.mark(ProvisioningStatus.PENDING_DELETE, listener)
        common.enqueue_child_change(session, ctx, lb, "listener", listener.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()


def stats(deps: Deps, ctx: RequestContext, listener_id: str) -> dict[str, int]:
    with deps.db.read() as session:
        listener = common.get_or_404(session, m.Listener, listener_id)
        authorize(ctx, "listener:get_stats", listener.project_id)
        return sum_stats(session, m.ListenerStatistics.listener_id == listener.id)
