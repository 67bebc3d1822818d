"""Reading stored TLS material (PEM, PKCS12, DER) into the PEM bundles HAProxy reads."""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from statera.services.tls_bundles import Need, TlsMaterialError, read_secret
from tests import certgen

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def _labels(pem: bytes) -> list[str]:
    return [m.group(1).decode() for m in _BLOCK.finditer(pem)]


@pytest.fixture(scope="module")
def chain() -> tuple[certgen.Issued, certgen.Issued, certgen.Issued]:
    root = certgen.make_ca("Root CA")
    intermediate = certgen.make_ca("Intermediate CA", issuer=root)
    leaf = certgen.make_leaf(intermediate, "www.example.com", ("www.example.com",
                                                                "example.com"))
    return root, intermediate, leaf


def test_pem_bundle_in_any_order_becomes_leaf_chain_key(chain: tuple) -> None:
    root, intermediate, leaf = chain
    # Key first, root before the intermediate: the bundle is re-ordered for HAProxy.
    shuffled = leaf.key_pem + root.cert_pem + leaf.cert_pem + intermediate.cert_pem
    material = read_secret(shuffled)
    pem = material.pem()
    assert _labels(pem) == ["CERTIFICATE", "CERTIFICATE", "CERTIFICATE", "PRIVATE KEY"]
    certs = x509.load_pem_x509_certificates(pem)
    assert [c.subject for c in certs] == [leaf.cert.subject, intermediate.cert.subject,
                                          root.cert.subject]
    key = serialization.load_pem_private_key(pem, None)
    assert key.public_key() == leaf.key.public_key()
    material.check(Need.SERVER_CERT)
    material.check(Need.CLIENT_CERT)
    assert material.names() == ["www.example.com", "example.com"]


def test_pkcs12_without_passphrase(chain: tuple) -> None:
    root, intermediate, leaf = chain
    material = read_secret(certgen.p12(leaf, root, intermediate))
    certs = x509.load_pem_x509_certificates(material.pem())
    assert [c.subject for c in certs] == [leaf.cert.subject, intermediate.cert.subject,
                                          root.cert.subject]
    assert _labels(material.pem())[-1] == "PRIVATE KEY"
    material.check(Need.SERVER_CERT)


def test_rsa_keys_and_traditional_key_pem(chain: tuple) -> None:
    _, intermediate, _ = chain
    leaf = certgen.make_leaf(intermediate, "rsa.example.com", rsa_key=True)
    traditional = leaf.key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
    material = read_secret(leaf.cert_pem + traditional)
    assert _labels(material.pem()) == ["CERTIFICATE", "PRIVATE KEY"]


def test_ca_certificates_and_crls(chain: tuple) -> None:
    root, intermediate, _ = chain
    cas = read_secret(root.cert_pem + intermediate.cert_pem)
    cas.check(Need.CA)
    assert _labels(cas.pem()) == ["CERTIFICATE", "CERTIFICATE"]
    with pytest.raises(TlsMaterialError, match="no private key"):
        cas.check(Need.SERVER_CERT)
    with pytest.raises(TlsMaterialError, match="no certificate revocation list"):
        cas.check(Need.CRL)
    crl = read_secret(certgen.make_crl(root, (1234,)))
    crl.check(Need.CRL)
    assert _labels(crl.pem()) == ["X509 CRL"]
    with pytest.raises(TlsMaterialError, match="no CA certificate"):
        crl.check(Need.CA)


def test_der_certificate_and_crl(chain: tuple) -> None:
    root, _, _ = chain
    der = root.cert.public_bytes(serialization.Encoding.DER)
    read_secret(der).check(Need.CA)
    crl_der = x509.load_pem_x509_crl(certgen.make_crl(root)).public_bytes(
        serialization.Encoding.DER)
    read_secret(crl_der).check(Need.CRL)


def test_a_ca_field_refuses_a_secret_with_a_key(chain: tuple) -> None:
    _, _, leaf = chain
    with pytest.raises(TlsMaterialError, match="holds a private key"):
        read_secret(certgen.pem_bundle(leaf)).check(Need.CA)


def test_server_certificate_must_name_a_host(chain: tuple) -> None:
    _, intermediate, _ = chain
    nameless = certgen.make_leaf(intermediate, None)
    material = read_secret(certgen.pem_bundle(nameless))
    material.check(Need.CLIENT_CERT)  # a client certificate may go without a host name
    with pytest.raises(TlsMaterialError, match="names no host"):
        material.check(Need.SERVER_CERT)
    sans_only = certgen.make_leaf(intermediate, None, ("only-san.example.com",))
    read_secret(certgen.pem_bundle(sans_only)).check(Need.SERVER_CERT)


@pytest.mark.parametrize(("payload", "why"), [
    (b"hello world", "neither PEM, nor PKCS12, nor DER"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "incomplete"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot be read"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PUBLIC KEY"),
])
def test_garbage_is_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(TlsMaterialError, match=why):
        read_secret(payload)


def test_inconsistent_material_is_refused(chain: tuple) -> None:
    root, intermediate, leaf = chain
    other = certgen.make_leaf(intermediate, "other.example.com")
    with pytest.raises(TlsMaterialError, match="matches none of its certificates"):
        read_secret(other.cert_pem + leaf.key_pem)
    with pytest.raises(TlsMaterialError, match="no certificate"):
        read_secret(leaf.key_pem)
    with pytest.raises(TlsMaterialError, match="more than one private key"):
        read_secret(leaf.cert_pem + leaf.key_pem + other.key_pem)
    with pytest.raises(TlsMaterialError, match="mixes a private key"):
        read_secret(certgen.pem_bundle(leaf) + certgen.make_crl(root))


def test_protected_keys_are_refused_without_quoting_them(chain: tuple) -> None:
    _, intermediate, leaf = chain
    encrypted = leaf.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"))
    with pytest.raises(TlsMaterialError, match="encrypted") as info:
        read_secret(leaf.cert_pem + encrypted)
    assert leaf.key_body[:40] not in str(info.value)
    with pytest.raises(TlsMaterialError, match="passphrase") as info:
        read_secret(certgen.p12(leaf, intermediate, password=b"secret"))
    # A broken key block: the error names the block, not its content.
    damaged = leaf.cert_pem + leaf.key_pem.replace(leaf.key_body[10:30].encode(), b"A" * 20)
    with pytest.raises(TlsMaterialError) as info:
        read_secret(damaged)
    assert leaf.key_body[:40] not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
