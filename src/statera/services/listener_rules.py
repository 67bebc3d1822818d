"""What a listener may be: its protocol and port, limits and timeouts, TLS termination,
header insertion, allowed CIDRs, and the pools it (or one of its L7 policies) may send
traffic to.

Settings are checked as a "state" dict (API names) of the listener as it would be after the
change, so that a create and a PUT meet the same rules across fields. TLS container
references are stored as given, once the secret store confirms that each names a secret of
the load balancer's project holding what the field needs (services.secrets.check_ref).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.orm import Session, object_session

from statera.config.settings import ApiSettingsSection
from statera.db import models as m
from statera.domain.enums import (
    HTTP_HEADERS,
    LISTENER_POOL_PROTOCOLS,
    SSL_HEADERS,
    TLS_VERSION_ORDER,
    AlpnProtocol,
    ClientAuthentication,
    ListenerProtocol,
    ProvisioningStatus,
    l4_family,
)
from statera.domain.errors import DuplicateEntry, InvalidInput, NotFound
from statera.services import secrets
from statera.services.deps import Deps
from statera.services.fields import (
    HTTP_LISTENER_PROTOCOLS,
    below_minimum,
    check_text,
    invalid,
    one_of,
    require_some,
    secret_ref,
    tls_ciphers,
    unique,
)
from statera.services.tls_bundles import Need

MAX_TIMEOUT = 2073600000  # 24 days in milliseconds, as upstream
TLS = ListenerProtocol.TERMINATED_HTTPS
TIMEOUTS = (
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
    "timeout_tcp_inspect",
)
REFS = ("default_tls_container_ref", "client_ca_tls_container_ref", "client_crl_container_ref")
# What the secret behind each reference must hold.
REF_NEEDS = {
    "default_tls_container_ref": Need.SERVER_CERT,
    "sni_container_refs": Need.SERVER_CERT,
    "client_ca_tls_container_ref": Need.CA,
    "client_crl_container_ref": Need.CRL,
}
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
# State keys that are listener columns of the same name.
_COLUMNS = (
    "connection_limit",
    *TIMEOUTS,
    "client_authentication",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
    "hsts_max_age",
    "hsts_include_subdomains",
    "hsts_preload",
)
_HEADER_NAMES = {h.lower(): h for h in HTTP_HEADERS | SSL_HEADERS}


# ---- single fields ---------------------------------------------------------------------------


def check_protocol(deps: Deps, protocol: str) -> None:
    api = deps.settings.api_settings
    one_of("protocol", protocol, ListenerProtocol)
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


def check_int(field: str, value: Any, low: int, high: int | None = None) -> int:
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
    secret_ref(field, ref, reason="A container reference is a URL or an id without spaces.")


def _check_ciphers(api: ApiSettingsSection, ciphers: Any) -> None:
    check_text("tls_ciphers", ciphers, max_length=2048)
    tls_ciphers(
        ciphers,
        api.tls_cipher_prohibit_list,
        reason="An OpenSSL cipher string may only contain letters, digits and -+!:@=_.",
    )


def _check_tls_versions(api: ApiSettingsSection, versions: list[Any]) -> list[str]:
    wanted = [str(v) for v in versions]
    require_some("tls_versions", wanted, "TLS version")
    minimum = api.minimum_tls_version
    for version in wanted:
        if version not in TLS_VERSION_ORDER:
            raise invalid(
                "tls_versions", version, f"Value should be one of {', '.join(TLS_VERSION_ORDER)}."
            )
        if below_minimum(version, minimum):
            raise invalid(
                "tls_versions",
                version,
                f"TLS versions below {minimum} are not allowed in this deployment.",
            )
    return unique(wanted)


def _check_alpn_protocols(protocols: list[Any]) -> list[str]:
    wanted = [str(p) for p in protocols]
    require_some("alpn_protocols", wanted, "ALPN protocol")
    for proto in wanted:
        one_of("alpn_protocols", proto, AlpnProtocol)
    return unique(wanted)


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


def _vip_versions(lb: m.LoadBalancer) -> set[int]:
    addresses = [lb.vip.ip_address] if lb.vip is not None else []
    addresses += [av.ip_address for av in lb.additional_vips]
    return {ipaddress.ip_address(a).version for a in addresses if a}


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
    return unique(out)


# ---- the state dict --------------------------------------------------------------------------


def _check_values(deps: Deps, lb: m.LoadBalancer, st: dict[str, Any], given: set[str]) -> None:
    """Check (and normalise in ``st``) the values the client sent."""
    api = deps.settings.api_settings
    if "connection_limit" in given:
        check_int("connection_limit", st["connection_limit"], -1)
    for field in TIMEOUTS:
        if field in given:
            check_int(field, st[field], 0, MAX_TIMEOUT)
    if "hsts_max_age" in given and st["hsts_max_age"] is not None:
        check_int("hsts_max_age", st["hsts_max_age"], 0)
    for field in REFS:
        if field in given and st[field] is not None:
            _check_ref(field, st[field])
    if "sni_container_refs" in given:
        for ref in st["sni_container_refs"]:
            _check_ref("sni_container_refs", ref)
        st["sni_container_refs"] = unique(st["sni_container_refs"])
    if "client_authentication" in given:
        one_of("client_authentication", st["client_authentication"], ClientAuthentication)
    if "tls_ciphers" in given and st["tls_ciphers"] is not None:
        _check_ciphers(api, st["tls_ciphers"])
    if "tls_versions" in given and st["tls_versions"] is not None:
        st["tls_versions"] = _check_tls_versions(api, st["tls_versions"])
    if "alpn_protocols" in given and st["alpn_protocols"] is not None:
        st["alpn_protocols"] = _check_alpn_protocols(st["alpn_protocols"])
    if "insert_headers" in given:
        st["insert_headers"] = _canonical_headers(st["insert_headers"])
    if "allowed_cidrs" in given:
        st["allowed_cidrs"] = _check_cidrs(lb, st["allowed_cidrs"])


def _check_tls_state(st: dict[str, Any]) -> None:
    if st["protocol"] != TLS:
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
        return
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


def _check_state(st: dict[str, Any]) -> None:
    """Rules across fields, on the listener as it would be after the change."""
    _check_tls_state(st)
    protocol = st["protocol"]
    headers = st["insert_headers"]
    if headers and protocol not in HTTP_LISTENER_PROTOCOLS:
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


def _check_secrets(deps: Deps, lb: m.LoadBalancer, st: dict[str, Any], given: set[str]) -> None:
    """Each reference the client sent names a readable secret holding what it needs."""
    session = object_session(lb)
    assert session is not None, "the load balancer is read in the request's transaction"
    for field, need in REF_NEEDS.items():
        if field not in given or not st[field]:
            continue
        for ref in st[field] if field == "sni_container_refs" else [st[field]]:
            secrets.check_ref(session, deps.settings, lb.project_id, ref, need)


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


def _tls_defaults(api: ApiSettingsSection, st: dict[str, Any]) -> None:
    if st["protocol"] != TLS:
        return
    if st["tls_ciphers"] is None:
        st["tls_ciphers"] = api.default_listener_ciphers
    if st["tls_versions"] is None:
        st["tls_versions"] = list(api.default_listener_tls_versions)
    if st["alpn_protocols"] is None:
        st["alpn_protocols"] = list(api.default_listener_alpn_protocols)


def settle_state(deps: Deps, lb: m.LoadBalancer, st: dict[str, Any], given: set[str]) -> None:
    """Check the values in ``given`` (the keys the client sent non-null), fill defaults and
    check the rules across fields; ``st`` ends as the listener's new settings."""
    _check_values(deps, lb, st, given)
    _defaults(deps, st)
    _check_state(st)
    _check_secrets(deps, lb, st, given)
    _tls_defaults(deps.settings.api_settings, st)


def state_of(li: m.Listener) -> dict[str, Any]:
    st: dict[str, Any] = {field: getattr(li, field) for field in ("protocol", *_COLUMNS)}
    st.update(
        default_pool_id=li.default_pool_id,
        default_tls_container_ref=li.tls_certificate_id,
        client_ca_tls_container_ref=li.client_ca_tls_certificate_id,
        client_crl_container_ref=li.client_crl_container_id,
        sni_container_refs=[s.tls_container_id for s in li.sni_containers],
        allowed_cidrs=[c.cidr for c in li.allowed_cidrs],
        insert_headers=dict(li.insert_headers or {}),
    )
    return st


def apply_state(li: m.Listener, st: dict[str, Any]) -> None:
    for field in _COLUMNS:
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


# ---- neighbours: pools and other listeners ---------------------------------------------------


def check_pool_protocol(listener_protocol: str, pool_protocol: str) -> None:
    allowed = LISTENER_POOL_PROTOCOLS.get(listener_protocol, frozenset())
    if not allowed:
        raise InvalidInput(f"{listener_protocol} listeners cannot send traffic to a pool.")
    if pool_protocol not in allowed:
        raise InvalidInput(
            f"The pool protocol '{pool_protocol}' is invalid while the "
            f"listener protocol is '{listener_protocol}'."
        )


def routable_pool(
    session: Session, lb: m.LoadBalancer, listener_protocol: str, pool_id: str
) -> m.Pool:
    """The pool ``pool_id`` of ``lb``, if a listener of ``listener_protocol`` (as default pool
    or through an L7 redirect) may send traffic to it."""
    pool = session.get(m.Pool, pool_id)
    if (
        pool is None
        or pool.load_balancer_id != lb.id
        or pool.provisioning_status == ProvisioningStatus.DELETED
    ):
        raise NotFound(resource="Pool", id=pool_id)
    check_pool_protocol(listener_protocol, pool.protocol)
    return pool


def check_port_free(lb: m.LoadBalancer, protocol: str, port: int) -> None:
    for other in lb.listeners:
        if (
            other.protocol_port == port
            and l4_family(other.protocol) == l4_family(protocol)
            and other.provisioning_status != ProvisioningStatus.DELETED
        ):
            raise DuplicateEntry(
                resource="Listener", parent="Load Balancer", what=f"protocol_port {port}"
            )
