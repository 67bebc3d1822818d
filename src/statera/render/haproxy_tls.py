"""TLS in haproxy.cfg: terminating binds (certificates, client authentication), re-encryption
towards members, the cipher/version/ALPN options both share, and HSTS.

Certificates are named by path only: the agent writes each PEM bundle under ``cert_dir`` as
``options.cert_file(ref)``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable
from functools import cache

from statera.domain.enums import (
    TLS_VERSION_ORDER,
    AlpnProtocol,
    ClientAuthentication,
    ListenerProtocol,
)
from statera.domain.model import Listener, Pool
from statera.render import escape as esc
from statera.render.escape import Cfg, RenderError, literal
from statera.render.haproxy_view import words
from statera.render.options import RenderOptions, cert_file

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
_CIPHERS = re.compile(r"[A-Za-z0-9:+!@=_.\-]{1,4096}")
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


def server_certificates(listener: Listener, what: str) -> list[str]:
    """The default certificate's reference first, then the SNI ones, without repeats."""
    refs = [listener.default_tls_container_ref, *listener.sni_container_refs]
    unique = list(dict.fromkeys(r for r in refs if r is not None))
    if not unique:
        raise RenderError(f"{what}: a TLS-terminating listener needs a certificate.")
    return unique


def cert_path(cert_dir: Cfg, ref: object, what: str) -> Cfg:
    return esc.join_path(cert_dir, cert_file(esc.plain_text(ref, f"{what} certificate ref")))


def _cert_option(keyword: str, cert_dir: Cfg, ref: object, what: str) -> list[Cfg]:
    """``<keyword> <PEM file of ref>``."""
    return [literal(keyword), cert_path(cert_dir, ref, what)]


def terminates_tls(listener: Listener) -> bool:
    """TERMINATED_HTTPS, or a PROMETHEUS listener given a certificate."""
    return listener.protocol == ListenerProtocol.TERMINATED_HTTPS or bool(
        listener.protocol == ListenerProtocol.PROMETHEUS
        and (listener.default_tls_container_ref or listener.sni_container_refs)
    )


def bind_tls(listener: Listener, opts: RenderOptions, crt_list: Cfg, what: str) -> Cfg:
    """The TLS words of a terminating listener's ``bind`` lines; ``crt_list`` is where its
    certificates are listed (see haproxy.render_crt_list)."""
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    for ref in server_certificates(listener, what):
        cert_path(cert_dir, ref, what)
    parts = [literal("ssl crt-list"), crt_list]
    verify = _VERIFY.get(listener.client_authentication)  # type: ignore[call-overload]
    if verify is None:
        raise esc.refuse(what, listener.client_authentication, "unknown client_authentication")
    if listener.client_ca_tls_container_ref:
        parts += _cert_option("ca-file", cert_dir, listener.client_ca_tls_container_ref, what)
        parts += [literal("verify"), literal(verify)]
        if listener.client_crl_container_ref:
            parts += _cert_option("crl-file", cert_dir, listener.client_crl_container_ref, what)
    elif verify != "none" or listener.client_crl_container_ref:
        raise RenderError(f"{what}: client authentication needs a client CA certificate.")
    parts += _tls_options(
        listener.tls_ciphers, listener.tls_versions, listener.alpn_protocols, what
    )
    return words(*parts)


def server_tls(pool: Pool, opts: RenderOptions, what: str) -> Cfg | None:
    """Re-encryption towards the members (``tls_enabled``)."""
    if not pool.tls_enabled:
        return None
    cert_dir = esc.path(opts.cert_dir, "cert_dir")
    parts = [literal("ssl")]
    if pool.ca_tls_certificate_id:
        parts += _cert_option("verify required ca-file", cert_dir, pool.ca_tls_certificate_id, what)
        if pool.crl_container_id:
            parts += _cert_option("crl-file", cert_dir, pool.crl_container_id, what)
    else:
        parts.append(literal("verify none"))
    if pool.tls_certificate_id:
        parts += _cert_option("crt", cert_dir, pool.tls_certificate_id, what)
    parts += _tls_options(pool.tls_ciphers, pool.tls_versions, pool.alpn_protocols, what)
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


def hsts(listener: Listener, what: str) -> Cfg | None:
    """The Strict-Transport-Security value of a TERMINATED_HTTPS listener that sets one."""
    if listener.protocol != ListenerProtocol.TERMINATED_HTTPS or listener.hsts_max_age is None:
        return None
    value = "max-age=" + esc.integer(listener.hsts_max_age, f"{what} hsts_max_age", 0, 2**31 - 1)
    if listener.hsts_include_subdomains:
        value += "; includeSubDomains"
    if listener.hsts_preload:
        value += "; preload"
    return esc.quoted(value, f"{what} hsts")
