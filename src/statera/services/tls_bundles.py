"""Tenant TLS material: what a stored secret holds, read as HAProxy needs it.

A secret is a PKCS12 bundle without a passphrase (what Octavia users store most), or PEM:
a certificate with its key and intermediates, CA certificates, or CRLs. DER certificates and
CRLs are read as well. ``read_secret`` turns any of these into one PEM bundle:

* with a private key: the certificate whose public key matches it, then the intermediates
  (issuer order first, the rest after), then the key — what HAProxy's ``crt`` reads;
* without one: the certificates, then the CRLs — what ``ca-file`` and ``crl-file`` read.

Pure functions of bytes. Errors name what is wrong and never quote the payload, so nothing
of a private key can reach a log or an API answer through them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

# The keys HAProxy (OpenSSL) can serve with.
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey \
    | ed448.Ed448PrivateKey | dsa.DSAPrivateKey
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY",
                         b"DSA PRIVATE KEY"})
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE"})


class Need(StrEnum):
    """What a TLS reference field needs its secret to hold."""

    SERVER_CERT = "a certificate naming a host, with its private key"
    CLIENT_CERT = "a certificate and its private key"
    CA = "CA certificates"
    CRL = "a certificate revocation list"


class TlsMaterialError(ValueError):
    """The payload is not TLS material Statera can use; the message says why."""


@dataclass(frozen=True)
class TlsMaterial:
    """A secret's content, read."""

    certificates: tuple[x509.Certificate, ...]
    key: PrivateKey | None
    crls: tuple[x509.CertificateRevocationList, ...]

    def pem(self) -> bytes:
        """The one PEM bundle HAProxy gets for this secret (see the module doc)."""
        out = [c.public_bytes(serialization.Encoding.PEM) for c in self.certificates]
        if self.key is not None:
            out.append(self.key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        out += [crl.public_bytes(serialization.Encoding.PEM) for crl in self.crls]
        return b"".join(out)

    def check(self, need: Need) -> None:
        """Raise TlsMaterialError unless this is what a field needing ``need`` can use."""
        if need in (Need.SERVER_CERT, Need.CLIENT_CERT):
            if self.key is None:
                raise TlsMaterialError("it holds no private key")
            if need is Need.SERVER_CERT and not self.names():
                raise TlsMaterialError("its certificate names no host (neither a common "
                                       "name nor a DNS subject alternative name)")
            return
        if self.key is not None:
            raise TlsMaterialError(f"it holds a private key, but only {need.value} are wanted "
                                   "here; store the public part as a secret of its own")
        if need is Need.CA and not self.certificates:
            raise TlsMaterialError("it holds no CA certificate")
        if need is Need.CRL and not self.crls:
            raise TlsMaterialError("it holds no certificate revocation list")

    def names(self) -> list[str]:
        """The DNS names (CN, then SANs) of the served certificate, for SNI."""
        if not self.certificates:
            return []
        return certificate_names(self.certificates[0])


def certificate_names(cert: x509.Certificate) -> list[str]:
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    return names + [n for n in san.get_values_for_type(x509.DNSName) if n not in names]


def read_secret(payload: bytes) -> TlsMaterial:
    """Read a stored payload (PEM, PKCS12 or DER) as TLS material; TlsMaterialError if it
    is none of these or is inconsistent."""
    if b"-----BEGIN " in payload:
        certs, key, crls = _read_pem(payload)
    else:
        certs, key, crls = _read_binary(payload)
    if key is not None:
        if crls:
            raise TlsMaterialError("it mixes a private key with revocation lists")
        certs = _chain_for(key, certs)
    if not certs and not crls:
        raise TlsMaterialError("it holds no certificate")
    return TlsMaterial(certificates=tuple(certs), key=key, crls=tuple(crls))


def read_certificate_container(certificate: bytes, private_key: bytes | None = None,
                               intermediates: bytes | None = None,
                               passphrase: bytes | None = None) -> TlsMaterial:
    """Read the parts of a Barbican ``certificate`` container as one bundle: the
    certificate (PEM or DER), its private key (PEM or DER, decrypted with ``passphrase`` when
    it is encrypted) and intermediates (PEM certificates, or PKCS7 in PEM or DER)."""
    certs = _certificates_of(certificate, "certificate")
    if len(certs) != 1:
        raise TlsMaterialError("its certificate secret must hold exactly one certificate")
    chain = _certificates_of(intermediates, "intermediates") if intermediates else []
    key = _container_key(private_key, passphrase) if private_key else None
    if key is None:
        if passphrase:
            raise TlsMaterialError("it has a private key passphrase but no private key")
        return TlsMaterial(certificates=(certs[0], *chain), key=None, crls=())
    mine = _public_der(key.public_key())
    if _public_der(certs[0].public_key()) != mine:
        raise TlsMaterialError("its private key does not match its certificate")
    return TlsMaterial(certificates=tuple(_chain_for(key, certs + chain)), key=key, crls=())


def _certificates_of(payload: bytes, part: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN PKCS7-----" in payload:
            return list(pkcs7.load_pem_pkcs7_certificates(payload))
        if b"-----BEGIN " in payload:
            certs, key, crls = _read_pem(payload)
            if key is not None or crls:
                raise TlsMaterialError(f"its {part} secret holds more than certificates")
            return certs
        try:
            return [x509.load_der_x509_certificate(payload)]
        except ValueError:
            return list(pkcs7.load_der_pkcs7_certificates(payload))
    except TlsMaterialError:
        raise
    except (ValueError, TypeError):
        raise TlsMaterialError(f"its {part} secret cannot be read as certificates") from None


def _container_key(payload: bytes, passphrase: bytes | None) -> PrivateKey:
    load = (serialization.load_pem_private_key if b"-----BEGIN " in payload
            else serialization.load_der_private_key)
    try:
        return _usable_key(load(payload, passphrase or None))
    except TypeError:  # encrypted without a passphrase, or a passphrase for a clear key
        raise TlsMaterialError(
            "its private key is encrypted and the container names no passphrase"
            if not passphrase else "its private key is not encrypted, but a passphrase "
            "was given") from None
    except ValueError:
        raise TlsMaterialError("its private key cannot be read (a wrong passphrase?)"
                               ) from None


def _usable_key(key: object) -> PrivateKey:
    if not isinstance(key, PrivateKey):
        raise TlsMaterialError("its private key is of a kind TLS servers cannot use")
    return key


def _read_pem(payload: bytes) -> tuple[list[x509.Certificate], PrivateKey | None,
                                       list[x509.CertificateRevocationList]]:
    certs: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    keys: list[PrivateKey] = []
    blocks = list(_PEM_BLOCK.finditer(payload))
    if not blocks:
        raise TlsMaterialError("its PEM blocks are incomplete")
    for block in blocks:
        label, whole = block.group(1), block.group(0)
        try:
            if label in _CERT_LABELS:
                certs.append(x509.load_pem_x509_certificate(whole))
            elif label == b"X509 CRL":
                crls.append(x509.load_pem_x509_crl(whole))
            elif label in _KEY_LABELS:
                keys.append(_usable_key(serialization.load_pem_private_key(whole, None)))
            elif label == b"ENCRYPTED PRIVATE KEY":
                raise TlsMaterialError("its private key is encrypted; store it without a "
                                       "passphrase (the store encrypts it at rest)")
            else:
                raise TlsMaterialError(f"it holds a PEM block Statera does not use "
                                       f"({label.decode()})")
        except TlsMaterialError:
            raise
        except (ValueError, TypeError):
            kind = label.decode().lower()
            raise TlsMaterialError(f"a PEM block ({kind}) cannot be read") from None
    if len(keys) > 1:
        raise TlsMaterialError("it holds more than one private key")
    return certs, (keys[0] if keys else None), crls


def _read_binary(payload: bytes) -> tuple[list[x509.Certificate], PrivateKey | None,
                                          list[x509.CertificateRevocationList]]:
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(payload, None)
    except (ValueError, TypeError) as exc:
        # cryptography says "Invalid password or PKCS12 data" for both: tell them apart.
        if _looks_like_pkcs12(payload) and "password" in str(exc).lower():
            pkcs12_error: str | None = ("it is a PKCS12 bundle protected by a passphrase; "
                                        "export it without one")
        else:
            pkcs12_error = None
    else:
        certs = ([cert] if cert is not None else []) + list(extra)
        return certs, (_usable_key(key) if key is not None else None), []
    for load in (x509.load_der_x509_certificate, x509.load_der_x509_crl):
        try:
            obj = load(payload)
        except (ValueError, TypeError):
            continue
        if isinstance(obj, x509.Certificate):
            return [obj], None, []
        return [], None, [obj]
    raise TlsMaterialError(pkcs12_error or "it is neither PEM, nor PKCS12, nor DER")


def _looks_like_pkcs12(payload: bytes) -> bool:
    """A DER SEQUENCE whose first element is INTEGER 3 (the PFX version)."""
    if len(payload) < 8 or payload[0] != 0x30:
        return False
    length_bytes = payload[1] - 0x80 if payload[1] & 0x80 else 0
    start = 2 + length_bytes
    return payload[start:start + 3] == b"\x02\x01\x03"


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _chain_for(key: PrivateKey, certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """The certificate of ``key`` first, then its issuers as far as given, then the rest."""
    mine = _public_der(key.public_key())
    leaf = next((c for c in certs if _public_der(c.public_key()) == mine), None)
    if leaf is None:
        raise TlsMaterialError("its private key matches none of its certificates"
                               if certs else "it holds a private key but no certificate")
    chain, rest = [leaf], [c for c in certs if c is not leaf]
    while rest:
        issuer = next((c for c in rest if c.subject == chain[-1].issuer), None)
        if issuer is None or chain[-1].subject == chain[-1].issuer:
            break
        chain.append(issuer)
        rest.remove(issuer)
    return chain + rest
