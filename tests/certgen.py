"""Test certificates, made with ``cryptography`` at test time: a CA, an intermediate, leaves
for host names, CRLs, and their PEM and PKCS12 forms."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issued:
    key: Key
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def key_body(self) -> str:
        """The base64 body of the key's PEM, one string: what a leak check looks for."""
        return "".join(self.key_pem.decode().splitlines()[1:-1])


def _name(cn: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Statera tests")]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, key: Key) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2)))


def make_ca(cn: str = "Statera test CA", issuer: Issued | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else _name(cn)
    cert = (_builder(_name(cn), issuer_name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(signer_key, hashes.SHA256()))
    return Issued(key, cert)


def make_leaf(ca: Issued, cn: str | None, sans: tuple[str, ...] = (), *,
              rsa_key: bool = False) -> Issued:
    key: Key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key
                else ec.generate_private_key(ec.SECP256R1()))
    builder = _builder(_name(cn), ca.cert.subject, key).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def make_crl(ca: Issued, revoked: tuple[int, ...] = ()) -> bytes:
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(now - timedelta(minutes=5)).next_update(now + timedelta(days=2)))
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now - timedelta(minutes=1)).build())
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def pem_bundle(leaf: Issued, *chain: Issued, key_first: bool = False) -> bytes:
    certs = leaf.cert_pem + b"".join(c.cert_pem for c in chain)
    return leaf.key_pem + certs if key_first else certs + leaf.key_pem


def p12(leaf: Issued, *chain: Issued, password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return pkcs12.serialize_key_and_certificates(
        b"statera-test", leaf.key, leaf.cert, [c.cert for c in chain] or None, encryption)


# ---- secrets with fixed ids, for API tests that need TLS references that resolve ----------

SERVER_ID = "5ec0e700-0000-4000-8000-000000000001"
SNI_A_ID = "5ec0e700-0000-4000-8000-000000000002"
SNI_B_ID = "5ec0e700-0000-4000-8000-000000000003"
CA_ID = "5ec0e700-0000-4000-8000-000000000004"
CRL_ID = "5ec0e700-0000-4000-8000-000000000005"
CLIENT_ID = "5ec0e700-0000-4000-8000-000000000006"
BASE = "https://statera.example:9876/v1/secrets"


def ref(secret_id: str) -> str:
    return f"{BASE}/{secret_id}"


@functools.cache
def fixed_material() -> dict[str, bytes]:
    """secret id -> payload, made once per test session."""
    ca = make_ca()
    return {
        SERVER_ID: pem_bundle(make_leaf(ca, "www.example.com")),
        SNI_A_ID: pem_bundle(make_leaf(ca, "a.example.com")),
        SNI_B_ID: p12(make_leaf(ca, "b.example.com"), ca),
        CA_ID: ca.cert_pem,
        CRL_ID: make_crl(ca),
        CLIENT_ID: pem_bundle(make_leaf(ca, "client")),
    }


def seed_secrets(deps: Any, project: str = "p1") -> None:
    """Store the fixed secrets (sealed, as the store does) for ``project``; idempotent."""
    from statera.db import models as m
    from statera.services.secret_box import SecretBox

    box = SecretBox.for_settings(deps.settings)
    with deps.db.write() as session:
        for secret_id, payload in fixed_material().items():
            if session.get(m.Secret, secret_id) is None:
                session.add(m.Secret(id=secret_id, project_id=project, secret_type="opaque",
                                     content_type="application/octet-stream",
                                     payload=box.seal(payload, bound_to=secret_id)))
