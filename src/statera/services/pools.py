"""Pools: build (also for single-call creates), read, list, update and delete.

The field checks here work on plain dicts so that the nested pools of a single-call create
get exactly the checks of ``POST /pools``; members and health monitors reuse them.

TLS references (``tls_container_ref``, ``ca_tls_container_ref``, ``crl_container_ref``) are
only checked for shape; they are resolved against the secret store once it exists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import (
    LISTENER_POOL_PROTOCOLS,
    TLS_VERSION_ORDER,
    AlpnProtocol,
    LbAlgorithm,
    OperatingStatus,
    PoolProtocol,
    ProvisioningStatus,
    SessionPersistenceType,
    TlsVersion,
)
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import common, listing
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.loadbalancers import scope_to_project

# ---- field checks shared by pools, members and health monitors ------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# OpenSSL cipher strings: names, separators and operators only (never spaces or newlines).
_CIPHERS = re.compile(r"[A-Za-z0-9:+!@=_.\-]{1,2048}")
# Secret references: a URL or an id, one token without whitespace or controls.
_REF = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]{1,255}")
# RFC 6265 token characters, minus those HAProxy's parser treats specially (# ' % ( ) ").
_COOKIE = re.compile(r"[A-Za-z0-9!$&*+\-.^_`|~]{1,255}")
LVS_PROTOCOLS = frozenset({PoolProtocol.UDP, PoolProtocol.SCTP})
HTTP_LISTENERS = frozenset({"HTTP", "TERMINATED_HTTPS"})


def bad(attr: str, value: Any, reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid input for field/attribute {attr}. Value: '{value}'. {reason}")


def check_keys(data: dict[str, Any], allowed: Iterable[str], resource: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"Invalid input for field/attribute {resource}. Unknown attribute "
            f"for argument {resource}: {', '.join(unknown)}"
        )


def text(data: dict[str, Any], key: str, *, max_len: int = 255) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or _CONTROL.search(value):
        raise bad(
            key,
            value,
            f"A string of at most {max_len} characters without control characters is required.",
        )
    return value


def choice(
    data: dict[str, Any],
    key: str,
    allowed: Iterable[str],
    *,
    required: bool = False,
    attr: str | None = None,
) -> str | None:
    value = data.get(key)
    names = [str(a) for a in allowed]
    if value is None:
        if required:
            raise bad(attr or key, None, "Mandatory field missing.")
        return None
    if not isinstance(value, str) or value not in names:
        raise bad(attr or key, value, f"Value should be one of: {', '.join(names)}.")
    return value


def integer(
    data: dict[str, Any],
    key: str,
    low: int,
    high: int,
    *,
    default: int | None = None,
    required: bool = False,
    attr: str | None = None,
) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise bad(attr or key, None, "Mandatory field missing.")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(attr or key, value, f"An integer from {low} to {high} is required.")
    return value


def boolean(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(key, value, "A boolean is required.")
    return value


def tags(data: dict[str, Any]) -> list[str] | None:
    value = data.get("tags")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(
            isinstance(t, str) and 0 < len(t) <= 255 and not _CONTROL.search(t) for t in value
        )
    ):
        raise bad(
            "tags", value, "A list of at most 100 strings of 1 to 255 characters is required."
        )
    return value


def ip_address(value: Any, attr: str, deps: Deps) -> str:
    """A usable backend address: a valid IP, not reserved, not one that cannot be a server."""
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        raise bad(attr, value, "Not a valid IP address.")
    if str(ip) in deps.settings.networking.reserved_ips:
        raise InvalidInput(f"{attr} {ip} is a reserved IP address and cannot be used.")
    if (
        ip.is_unspecified
        or ip.is_multicast
        or ip.is_loopback
        or ip.is_link_local
        or str(ip) == "255.255.255.255"
    ):
        raise InvalidInput(f"{attr} {ip} cannot be used as a backend address.")
    return str(ip)


def tls_ref(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _REF.fullmatch(value):
        raise bad(
            key,
            value,
            "A secret reference (URL or id, at most 255 characters, no whitespace) is required.",
        )
    return value


def tls_ciphers(deps: Deps, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _CIPHERS.fullmatch(value):
        raise bad(
            "tls_ciphers",
            value,
            "An OpenSSL cipher string (letters, digits and "
            ":+!@=_.- only, at most 2048) is required.",
        )
    prohibited = set(deps.settings.api_settings.tls_cipher_prohibit_list)
    rejected = [c for c in value.split(":") if c in prohibited]
    if rejected:
        raise InvalidInput(
            "The following ciphers have been prohibited by an administrator: " + ", ".join(rejected)
        )
    return value


def tls_versions(deps: Deps, value: Any) -> list[str] | None:
    if value is None:
        return None
    known = [v.value for v in TlsVersion]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in known for v in value)
    ):
        raise bad("tls_versions", value, f"A non-empty list of: {', '.join(known)}.")
    minimum = deps.settings.api_settings.minimum_tls_version
    if minimum:
        low = [v for v in value if TLS_VERSION_ORDER.index(v) < TLS_VERSION_ORDER.index(minimum)]
        if low:
            raise InvalidInput(
                f"TLS versions {', '.join(low)} are below the minimum TLS "
                f"version {minimum} allowed in this deployment."
            )
    return list(dict.fromkeys(value))


def alpn_protocols(value: Any) -> list[str] | None:
    if value is None:
        return None
    known = [p.value for p in AlpnProtocol]
    if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
        raise bad("alpn_protocols", value, f"A list of: {', '.join(known)}.")
    return list(dict.fromkeys(value))


# ---- session persistence -------------------------------------------------------------------

SP_KEYS = frozenset({"type", "cookie_name", "persistence_timeout", "persistence_granularity"})


def session_persistence(sp: Any, protocol: str, http_mode: bool) -> dict[str, Any] | None:
    """Check a session_persistence object against the pool it belongs to."""
    if sp is None:
        return None
    if not isinstance(sp, dict):
        raise bad("session_persistence", sp, "An object is required.")
    check_keys(sp, SP_KEYS, "session_persistence")
    sp_type = choice(
        sp, "type", SessionPersistenceType, required=True, attr="session_persistence.type"
    )
    cookie = sp.get("cookie_name")
    if sp_type == SessionPersistenceType.APP_COOKIE and not cookie:
        raise InvalidInput(
            "session_persistence.cookie_name is required for APP_COOKIE session persistence."
        )
    if sp_type != SessionPersistenceType.APP_COOKIE and cookie is not None:
        raise InvalidInput(
            "session_persistence.cookie_name may only be given for APP_COOKIE session persistence."
        )
    if cookie is not None and not (isinstance(cookie, str) and _COOKIE.fullmatch(cookie)):
        raise bad(
            "session_persistence.cookie_name",
            cookie,
            "A cookie name of at most 255 characters without whitespace, controls or "
            "any of ,;\\\"'#%() is required.",
        )
    if sp_type != SessionPersistenceType.SOURCE_IP and not http_mode:
        raise InvalidInput(
            f"Session persistence of type {sp_type} needs a pool in HTTP mode: "
            "protocol HTTP, or PROXY/PROXYV2 behind an HTTP or "
            "TERMINATED_HTTPS listener."
        )
    timeout, granularity = sp.get("persistence_timeout"), sp.get("persistence_granularity")
    if protocol not in LVS_PROTOCOLS:
        if timeout is not None or granularity is not None:
            raise InvalidInput(
                "persistence_timeout and persistence_granularity are only for UDP and SCTP pools."
            )
        return {"type": sp_type, "cookie_name": cookie}
    # UDP/SCTP pools are refused before this point today; the rules wait for an LVS data plane.
    timeout = integer(
        sp,
        "persistence_timeout",
        0,
        2_073_600,
        default=360,
        attr="session_persistence.persistence_timeout",
    )
    if granularity is None:
        granularity = "255.255.255.255"
    try:
        ipaddress.ip_network(f"0.0.0.0/{granularity}")
    except (TypeError, ValueError):
        raise bad(
            "session_persistence.persistence_granularity", granularity, "A netmask is required."
        ) from None
    return {
        "type": sp_type,
        "cookie_name": None,
        "persistence_timeout": timeout,
        "persistence_granularity": granularity,
    }


def http_mode(protocol: str, listener_protocols: Sequence[str]) -> bool:
    if protocol == PoolProtocol.HTTP:
        return True
    if protocol in (PoolProtocol.PROXY, PoolProtocol.PROXYV2):
        return bool(listener_protocols) and all(p in HTTP_LISTENERS for p in listener_protocols)
    return False


# ---- building --------------------------------------------------------------------------------

POOL_KEYS = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "protocol",
        "lb_algorithm",
        "session_persistence",
        "tags",
        "tls_container_ref",
        "ca_tls_container_ref",
        "crl_container_ref",
        "tls_enabled",
        "tls_ciphers",
        "tls_versions",
        "alpn_protocols",
        "project_id",
        "tenant_id",
        "listener_id",
        "loadbalancer_id",
    }
)
GRAPH_KEYS = frozenset({"members", "healthmonitor"})


def _tls_defaults(deps: Deps, pool: m.Pool) -> None:
    if not pool.tls_enabled:
        return
    api = deps.settings.api_settings
    if pool.tls_ciphers is None:
        pool.tls_ciphers = api.default_pool_ciphers
    if pool.tls_versions is None:
        pool.tls_versions = list(api.default_pool_tls_versions)
    if pool.alpn_protocols is None:
        pool.alpn_protocols = list(api.default_pool_alpn_protocols)


def _check_ca_crl(ca: str | None, crl: str | None) -> None:
    if crl and not ca:
        raise InvalidInput(
            "A CA certificate reference (ca_tls_container_ref) is required to "
            "specify a revocation list."
        )


def check_listener_accepts(listener: m.Listener, protocol: str) -> None:
    """May ``listener`` take a (default) pool of ``protocol``?"""
    if listener.protocol == "PROMETHEUS":
        raise InvalidInput("PROMETHEUS listeners cannot have pools.")
    if protocol not in LISTENER_POOL_PROTOCOLS.get(listener.protocol, frozenset()):
        raise InvalidInput(
            f"The pool protocol '{protocol}' is invalid while the listener "
            f"protocol is '{listener.protocol}'"
        )


def planned_counts(data: dict[str, Any]) -> dict[str, int]:
    """What ``build_pool`` adds for ``data`` (single-call form), for a quota check made before
    building: afterwards the new rows would count themselves."""
    members = data.get("members")
    return {
        "pool": 1,
        "member": len(members) if isinstance(members, list) else 0,
        "health_monitor": int(data.get("healthmonitor") is not None),
    }


def build_pool(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    data: dict[str, Any],
    *,
    listener: m.Listener | None,
    graph: GraphBuild,
) -> m.Pool:
    """Check ``data`` and add a pool (PENDING_CREATE) to ``lb``; in a single-call create also
    its health monitor and members. The caller locks, checks quota and enqueues."""
    from statera.services import healthmonitors, members

    check_keys(data, POOL_KEYS | (GRAPH_KEYS if graph.single_call else set()), "pool")
    protocol = choice(data, "protocol", PoolProtocol, required=True)
    assert protocol is not None
    if protocol in LVS_PROTOCOLS:
        raise InvalidInput(
            f"Pools of protocol {protocol} are not supported yet: this "
            "deployment has no UDP/SCTP (LVS) data plane."
        )
    algorithm = choice(data, "lb_algorithm", LbAlgorithm, required=True)
    if listener is not None:
        check_listener_accepts(listener, protocol)
        if listener.default_pool_id:
            raise Conflict(
                f"Listener {listener.id} already has default pool {listener.default_pool_id}."
            )
    sp = session_persistence(
        data.get("session_persistence"),
        protocol,
        http_mode(protocol, [listener.protocol] if listener else []),
    )
    ca, crl = tls_ref(data, "ca_tls_container_ref"), tls_ref(data, "crl_container_ref")
    _check_ca_crl(ca, crl)
    name = text(data, "name")
    pool = m.Pool(
        id=new_id(),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        name=name,
        description=text(data, "description"),
        protocol=protocol,
        lb_algorithm=algorithm,
        enabled=boolean(data, "admin_state_up", True),
        tls_certificate_id=tls_ref(data, "tls_container_ref"),
        ca_tls_certificate_id=ca,
        crl_container_id=crl,
        tls_enabled=boolean(data, "tls_enabled", False),
        tls_ciphers=tls_ciphers(deps, data.get("tls_ciphers")),
        tls_versions=tls_versions(deps, data.get("tls_versions")),
        alpn_protocols=alpn_protocols(data.get("alpn_protocols")),
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
    )
    _tls_defaults(deps, pool)
    if sp is not None:
        pool.session_persistence = m.SessionPersistence(pool_id=pool.id, **sp)
    pool_tags = tags(data)
    session.add(pool)
    graph.add("pool", pool)
    if name:
        graph.pools_by_name[name] = pool
    session.flush()
    common.set_tags(session, pool.id, pool_tags)
    if listener is not None:
        listener.default_pool_id = pool.id
    if graph.single_call:
        if data.get("healthmonitor") is not None:
            healthmonitors.build_health_monitor(
                session, deps, pool, data["healthmonitor"], graph=graph
            )
        for member_data in data.get("members") or []:
            members.build_member(session, deps, pool, member_data, graph=graph)
    return pool


# ---- reading ---------------------------------------------------------------------------------


def _by_listener(_stmt: Any, listener_id: str) -> Any:
    return sa.or_(
        m.Pool.id.in_(sa.select(m.Listener.default_pool_id).where(m.Listener.id == listener_id)),
        m.Pool.id.in_(
            sa.select(m.L7Policy.redirect_pool_id).where(m.L7Policy.listener_id == listener_id)
        ),
    )


def _by_health_monitor(_stmt: Any, hm_id: str) -> Any:
    return m.Pool.id.in_(sa.select(m.HealthMonitor.pool_id).where(m.HealthMonitor.id == hm_id))


LISTING = listing.Listing(
    model=m.Pool,
    columns={
        "id": m.Pool.id,
        "name": m.Pool.name,
        "description": m.Pool.description,
        "provisioning_status": m.Pool.provisioning_status,
        "operating_status": m.Pool.operating_status,
        "admin_state_up": m.Pool.enabled,
        "project_id": m.Pool.project_id,
        "tenant_id": m.Pool.project_id,
        "created_at": m.Pool.created_at,
        "updated_at": m.Pool.updated_at,
        "protocol": m.Pool.protocol,
        "lb_algorithm": m.Pool.lb_algorithm,
        "loadbalancer_id": m.Pool.load_balancer_id,
        "tls_enabled": m.Pool.tls_enabled,
        "tls_container_ref": m.Pool.tls_certificate_id,
        "ca_tls_container_ref": m.Pool.ca_tls_certificate_id,
        "crl_container_ref": m.Pool.crl_container_id,
        "tls_ciphers": m.Pool.tls_ciphers,
    },
    custom_filters={"listener_id": _by_listener, "healthmonitor_id": _by_health_monitor},
)

# What presenting a pool reads; loaded up front because sessions close early.
LOAD = (
    selectinload(m.Pool.members).load_only(m.Member.id),
    selectinload(m.Pool.health_monitor).load_only(m.HealthMonitor.id),
)


def attach(session: Session, pools: Sequence[m.Pool]) -> None:
    """Load tags and the ids of the listeners using each pool (as default pool or through an
    L7 redirect) so presenters can read them after the session closes."""
    common.attach_tags(session, pools)
    found: dict[str, list[str]] = {p.id: [] for p in pools}
    if found:
        ids = list(found)
        rows = list(
            session.execute(
                sa.select(m.Listener.default_pool_id, m.Listener.id)
                .where(m.Listener.default_pool_id.in_(ids))
                .order_by(m.Listener.created_at, m.Listener.id)
            )
        )
        rows += list(
            session.execute(
                sa.select(m.L7Policy.redirect_pool_id, m.L7Policy.listener_id)
                .where(m.L7Policy.redirect_pool_id.in_(ids))
                .order_by(m.L7Policy.created_at, m.L7Policy.id)
            )
        )
        for pool_id, listener_id in rows:
            if pool_id is not None and listener_id not in found[pool_id]:
                found[pool_id].append(listener_id)
    for pool in pools:
        pool.__dict__["_listener_ids"] = found[pool.id]


def attached_listener_ids(pool: m.Pool) -> list[str]:
    return list(pool.__dict__.get("_listener_ids", []))


def get(deps: Deps, ctx: RequestContext, pool_id: str, *, check: bool = True) -> m.Pool:
    with deps.db.read() as session:
        pool = common.get_or_404(session, m.Pool, pool_id, options=LOAD)
        if check:
            authorize(ctx, "pool:get_one", pool.project_id)
        attach(session, [pool])
        return pool


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    authorize(ctx, "pool:get_all", ctx.project_id)
    with deps.db.read() as session:
        stmt = sa.select(m.Pool).where(m.Pool.provisioning_status != ProvisioningStatus.DELETED)
        stmt = scope_to_project(stmt, ctx, "pool", m.Pool.project_id, params)
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
        attach(session, page.items)
        return page


# ---- changing --------------------------------------------------------------------------------


def lock_pool(session: Session, pool_id: str) -> tuple[m.LoadBalancer, m.Pool]:
    """Take the tree lock of the pool's load balancer, then load the pool."""
    lb_id = session.scalar(sa.select(m.Pool.load_balancer_id).where(m.Pool.id == pool_id))
    if lb_id is None:
        raise NotFound(resource="Pool", id=pool_id)
    lb = common.lock_load_balancer(session, lb_id)
    return lb, common.get_or_404(session, m.Pool, pool_id)


def pool_listeners(session: Session, pool_id: str) -> list[m.Listener]:
    """The listeners whose config changes with the pool: default pool or L7 redirect."""
    redirecting = sa.select(m.L7Policy.listener_id).where(m.L7Policy.redirect_pool_id == pool_id)
    return list(
        session.scalars(
            sa.select(m.Listener)
            .where(sa.or_(m.Listener.default_pool_id == pool_id, m.Listener.id.in_(redirecting)))
            .order_by(m.Listener.created_at)
        )
    )


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.Pool:
    listener_id, lb_id = data.get("listener_id"), data.get("loadbalancer_id")
    if not listener_id and not lb_id:
        raise InvalidInput("Must provide at least one of: loadbalancer_id, listener_id")

    def work(session: Session) -> str:
        target_lb = lb_id
        if listener_id:
            owner = session.scalar(
                sa.select(m.Listener.load_balancer_id).where(m.Listener.id == listener_id)
            )
            if owner is None:
                raise NotFound(resource="Listener", id=listener_id)
            if lb_id and lb_id != owner:
                raise InvalidInput(
                    f"Listener {listener_id} does not belong to load balancer {lb_id}."
                )
            target_lb = owner
        lb = common.lock_load_balancer(session, str(target_lb))
        authorize(ctx, "pool:post", lb.project_id)
        listener = common.get_or_404(session, m.Listener, listener_id) if listener_id else None
        common.require_mutable(lb, listener)
        # Counted before building: the new row would otherwise count itself.
        common.check_quota(session, deps, lb.project_id, {"pool": 1})
        pool = build_pool(
            session, deps, lb, data, listener=listener, graph=GraphBuild(single_call=False)
        )
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.enqueue_child_change(session, ctx, lb, "pool", pool.id, "create")
        return pool.id

    pool_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, check=False)


UPDATE_KEYS = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "lb_algorithm",
        "session_persistence",
        "tags",
        "tls_container_ref",
        "ca_tls_container_ref",
        "crl_container_ref",
        "tls_enabled",
        "tls_ciphers",
        "tls_versions",
        "alpn_protocols",
    }
)


def required_bool(changes: dict[str, Any], key: str) -> bool:
    if changes.get(key) is None:
        raise bad(key, None, "A boolean is required.")
    return boolean(changes, key, False)


def _update_session_persistence(pool: m.Pool, new: Any, listeners: list[m.Listener]) -> None:
    old = pool.session_persistence
    if new is None:
        pool.session_persistence = None
        return
    if not isinstance(new, dict):
        raise bad("session_persistence", new, "An object is required.")
    merged = dict(new)
    # Upstream semantics: a PUT without a type (or with the same type) amends the current one.
    if old is not None and merged.get("type") in (None, old.type):
        merged["type"] = old.type
        for key in SP_KEYS - {"type"}:
            merged.setdefault(key, getattr(old, key))
    checked = session_persistence(
        merged, pool.protocol, http_mode(pool.protocol, [li.protocol for li in listeners])
    )
    assert checked is not None
    if old is None:
        pool.session_persistence = m.SessionPersistence(pool_id=pool.id, **checked)
    else:
        for key in SP_KEYS:
            setattr(old, key, checked.get(key))


def _apply_changes(
    session: Session, deps: Deps, pool: m.Pool, changes: dict[str, Any], listeners: list[m.Listener]
) -> None:
    check_keys(changes, UPDATE_KEYS, "pool")
    for key in ("name", "description"):
        if key in changes:
            setattr(pool, key, text(changes, key))
    if "admin_state_up" in changes:
        pool.enabled = required_bool(changes, "admin_state_up")
    if "lb_algorithm" in changes:
        pool.lb_algorithm = str(choice(changes, "lb_algorithm", LbAlgorithm, required=True))
    if "session_persistence" in changes:
        _update_session_persistence(pool, changes["session_persistence"], listeners)
    if "tls_enabled" in changes:
        pool.tls_enabled = required_bool(changes, "tls_enabled")
    for key, column in (
        ("tls_container_ref", "tls_certificate_id"),
        ("ca_tls_container_ref", "ca_tls_certificate_id"),
        ("crl_container_ref", "crl_container_id"),
    ):
        if key in changes:
            setattr(pool, column, tls_ref(changes, key))
    _check_ca_crl(pool.ca_tls_certificate_id, pool.crl_container_id)
    # null resets these to the deployment's defaults (when TLS is on).
    if "tls_ciphers" in changes:
        pool.tls_ciphers = tls_ciphers(deps, changes["tls_ciphers"])
    if "tls_versions" in changes:
        pool.tls_versions = tls_versions(deps, changes["tls_versions"])
    if "alpn_protocols" in changes:
        pool.alpn_protocols = alpn_protocols(changes["alpn_protocols"])
    _tls_defaults(deps, pool)
    if "tags" in changes:
        common.set_tags(session, pool.id, tags(changes))


def update(deps: Deps, ctx: RequestContext, pool_id: str, changes: dict[str, Any]) -> m.Pool:
    def work(session: Session) -> None:
        lb, pool = lock_pool(session, pool_id)
        authorize(ctx, "pool:put", lb.project_id)
        listeners = pool_listeners(session, pool.id)
        common.require_mutable(lb, pool, *listeners)
        _apply_changes(session, deps, pool, changes, listeners)
        pool.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, *listeners)
        common.enqueue_child_change(
            session, ctx, lb, "pool", pool.id, "update", payload={"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, check=False)


def delete(deps: Deps, ctx: RequestContext, pool_id: str) -> None:
    def work(session: Session) -> None:
        lb, pool = lock_pool(session, pool_id)
        authorize(ctx, "pool:delete", lb.project_id)
        listeners = pool_listeners(session, pool.id)
        common.require_mutable(lb, pool, *listeners)
        policy_id = session.scalar(
            sa.select(m.L7Policy.id).where(m.L7Policy.redirect_pool_id == pool.id).limit(1)
        )
        if policy_id is not None:
            raise Conflict(f"Pool {pool.id} is in use by L7 policy {policy_id}.")
        pool.provisioning_status = ProvisioningStatus.PENDING_DELETE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, *listeners)
        common.enqueue_child_change(session, ctx, lb, "pool", pool.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()
