"""What a pool may be: its fields, its session persistence, the listener it serves and the
deployment's TLS settings. Checks work on plain dicts so that the nested pools of a
single-call create get exactly the checks of ``POST /pools``.

TLS references (``tls_container_ref``, ``ca_tls_container_ref``, ``crl_container_ref``) must
name secrets of the load balancer's project that hold a client certificate with its key, CA
certificates and a CRL respectively (``check_secret_refs``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, object_session

from statera.config.settings import ApiSettingsSection
from statera.db import models as m
from statera.domain.enums import (
    LISTENER_POOL_PROTOCOLS,
    AlpnProtocol,
    LbAlgorithm,
    PoolProtocol,
    SessionPersistenceType,
    TlsVersion,
)
from statera.domain.errors import Conflict, InvalidInput
from statera.services import secrets
from statera.services.deps import Deps
from statera.services.fields import (
    HTTP_LISTENER_PROTOCOLS,
    HTTP_TOKEN,
    below_minimum,
    boolean,
    check_keys,
    choice,
    integer,
    invalid,
    require_some,
    required_bool,
    secret_ref,
    tags,
    text,
    tls_ciphers,
    unique,
)
from statera.services.tls_bundles import Need

LVS_PROTOCOLS = frozenset({PoolProtocol.UDP, PoolProtocol.SCTP})
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
UPDATE_KEYS = POOL_KEYS - {"protocol", "project_id", "tenant_id", "listener_id", "loadbalancer_id"}
SP_KEYS = frozenset({"type", "cookie_name", "persistence_timeout", "persistence_granularity"})
MAX_COOKIE_NAME = 255

# ---- TLS ---------------------------------------------------------------------------------------


def _ref(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return secret_ref(
        key,
        value,
        reason="A secret reference (URL or id, at most 255 characters, no whitespace) is required.",
    )


def _ciphers(api: ApiSettingsSection, value: Any) -> str | None:
    if value is None:
        return None
    return tls_ciphers(
        value,
        api.tls_cipher_prohibit_list,
        reason="An OpenSSL cipher string (letters, digits and "
        ":+!@=_.- only, at most 2048) is required.",
    )


def _tls_versions(api: ApiSettingsSection, value: Any) -> list[str] | None:
    if value is None:
        return None
    known = [v.value for v in TlsVersion]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in known for v in value)
    ):
        raise invalid("tls_versions", value, f"A non-empty list of: {', '.join(known)}.")
    minimum = api.minimum_tls_version
    low = [v for v in value if below_minimum(v, minimum)]
    if low:
        raise InvalidInput(
            f"TLS versions {', '.join(low)} are below the minimum TLS "
            f"version {minimum} allowed in this deployment."
        )
    return unique(value)


def _alpn_protocols(value: Any) -> list[str] | None:
    if value is None:
        return None
    known = [p.value for p in AlpnProtocol]
    if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
        raise invalid("alpn_protocols", value, f"A list of: {', '.join(known)}.")
    require_some("alpn_protocols", value, "ALPN protocol")
    return unique(value)


def _check_ca_crl(ca: str | None, crl: str | None) -> None:
    if crl and not ca:
        raise InvalidInput(
            "A CA certificate reference (ca_tls_container_ref) is required to "
            "specify a revocation list."
        )


# Pool columns holding TLS references, and what the secret behind each must hold.
REF_COLUMNS = {
    "tls_certificate_id": Need.CLIENT_CERT,
    "ca_tls_certificate_id": Need.CA,
    "crl_container_id": Need.CRL,
}


def check_secret_refs(
    session: Session, deps: Deps, project_id: str | None, columns: dict[str, Any]
) -> None:
    """Each reference among ``columns`` (pool column values) names a readable secret of
    ``project_id`` holding what it needs."""
    for column, need in REF_COLUMNS.items():
        ref = columns.get(column)
        if ref:
            secrets.check_ref(session, deps.settings, project_id, ref, need)


def apply_tls_defaults(api: ApiSettingsSection, pool: m.Pool) -> None:
    """Fill the TLS settings left null with the deployment's defaults (when TLS is on)."""
    if not pool.tls_enabled:
        return
    if pool.tls_ciphers is None:
        pool.tls_ciphers = api.default_pool_ciphers
    if pool.tls_versions is None:
        pool.tls_versions = list(api.default_pool_tls_versions)
    if pool.alpn_protocols is None:
        pool.alpn_protocols = list(api.default_pool_alpn_protocols)


# ---- session persistence -------------------------------------------------------------------


def http_mode(protocol: str, listener_protocols: Sequence[str]) -> bool:
    if protocol == PoolProtocol.HTTP:
        return True
    if protocol in (PoolProtocol.PROXY, PoolProtocol.PROXYV2):
        return bool(listener_protocols) and all(
            p in HTTP_LISTENER_PROTOCOLS for p in listener_protocols
        )
    return False


def _cookie_name(sp_type: str | None, cookie: Any) -> None:
    if sp_type == SessionPersistenceType.APP_COOKIE and not cookie:
        raise InvalidInput(
            "session_persistence.cookie_name is required for APP_COOKIE session persistence."
        )
    if sp_type != SessionPersistenceType.APP_COOKIE and cookie is not None:
        raise InvalidInput(
            "session_persistence.cookie_name may only be given for APP_COOKIE session persistence."
        )
    if cookie is not None and not (
        isinstance(cookie, str) and len(cookie) <= MAX_COOKIE_NAME and HTTP_TOKEN.fullmatch(cookie)
    ):
        raise invalid(
            "session_persistence.cookie_name",
            cookie,
            "A cookie name of at most 255 characters without whitespace, controls or "
            "any of ,;\\\"'#%() is required.",
        )


def session_persistence(sp: Any, protocol: str, http: bool) -> dict[str, Any] | None:
    """Check a session_persistence object against the pool it belongs to (``http``: the pool
    runs in HTTP mode); column values out."""
    if sp is None:
        return None
    if not isinstance(sp, dict):
        raise invalid("session_persistence", sp, "An object is required.")
    check_keys(sp, SP_KEYS, "session_persistence")
    sp_type = choice(
        sp, "type", SessionPersistenceType, required=True, attr="session_persistence.type"
    )
    cookie = sp.get("cookie_name")
    _cookie_name(sp_type, cookie)
    if sp_type != SessionPersistenceType.SOURCE_IP and not http:
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
        raise invalid(
            "session_persistence.persistence_granularity", granularity, "A netmask is required."
        ) from None
    return {
        "type": sp_type,
        "cookie_name": None,
        "persistence_timeout": timeout,
        "persistence_granularity": granularity,
    }


def _update_session_persistence(pool: m.Pool, new: Any, listeners: list[m.Listener]) -> None:
    old = pool.session_persistence
    if new is None:
        pool.session_persistence = None
        return
    if not isinstance(new, dict):
        raise invalid("session_persistence", new, "An object is required.")
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


# ---- the listener ----------------------------------------------------------------------------


def check_listener_accepts(listener: m.Listener, protocol: str) -> None:
    """May ``listener`` take a (default) pool of ``protocol``?"""
    if listener.protocol == "PROMETHEUS":
        raise InvalidInput("PROMETHEUS listeners cannot have pools.")
    if protocol not in LISTENER_POOL_PROTOCOLS.get(listener.protocol, frozenset()):
        raise InvalidInput(
            f"The pool protocol '{protocol}' is invalid while the listener "
            f"protocol is '{listener.protocol}'"
        )


# ---- whole pools -----------------------------------------------------------------------------


def check_new_pool(
    deps: Deps, data: dict[str, Any], listener: m.Listener | None, *, single_call: bool
) -> dict[str, Any]:
    """Check a pool as POSTed (alone, as a listener's default pool or in a tree); column
    values out, with ``session_persistence`` (column values or None) and ``tags``."""
    api = deps.settings.api_settings
    check_keys(data, POOL_KEYS | (GRAPH_KEYS if single_call else set()), "pool")
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
    ca, crl = _ref(data, "ca_tls_container_ref"), _ref(data, "crl_container_ref")
    _check_ca_crl(ca, crl)
    return {
        "name": text(data, "name"),
        "description": text(data, "description"),
        "protocol": protocol,
        "lb_algorithm": algorithm,
        "enabled": boolean(data, "admin_state_up", True),
        "tls_certificate_id": _ref(data, "tls_container_ref"),
        "ca_tls_certificate_id": ca,
        "crl_container_id": crl,
        "tls_enabled": boolean(data, "tls_enabled", False),
        "tls_ciphers": _ciphers(api, data.get("tls_ciphers")),
        "tls_versions": _tls_versions(api, data.get("tls_versions")),
        "alpn_protocols": _alpn_protocols(data.get("alpn_protocols")),
        "session_persistence": sp,
        "tags": tags(data),
    }


def apply_changes(
    deps: Deps, pool: m.Pool, changes: dict[str, Any], listeners: list[m.Listener]
) -> None:
    """Check a PUT and apply it to ``pool`` (all but the tags); ``listeners`` use the pool."""
    api = deps.settings.api_settings
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
            setattr(pool, column, _ref(changes, key))
    _check_ca_crl(pool.ca_tls_certificate_id, pool.crl_container_id)
    changed = {
        column: getattr(pool, column)
        for key, column in (
            ("tls_container_ref", "tls_certificate_id"),
            ("ca_tls_container_ref", "ca_tls_certificate_id"),
            ("crl_container_ref", "crl_container_id"),
        )
        if key in changes
    }
    session = object_session(pool)
    assert session is not None, "the pool is read in the request's transaction"
    check_secret_refs(session, deps, pool.project_id, changed)
    # null resets these to the deployment's defaults (when TLS is on).
    if "tls_ciphers" in changes:
        pool.tls_ciphers = _ciphers(api, changes["tls_ciphers"])
    if "tls_versions" in changes:
        pool.tls_versions = _tls_versions(api, changes["tls_versions"])
    if "alpn_protocols" in changes:
        pool.alpn_protocols = _alpn_protocols(changes["alpn_protocols"])
    apply_tls_defaults(api, pool)
