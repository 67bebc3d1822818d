"""The controller's PKI: two CAs, the client certificate, amphora certificates."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from statera.cli.certs import app as certs_app
from statera.domain.errors import ConfigError
from statera.drivers.certs.local_ca import init_pki, issue_leaf, open_pki

AMP = "0d7f9c8e-3b1a-4a55-9a55-2f1f0f4e8a11"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_init_creates_both_cas_client_cert_and_heartbeat_key_private(tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki")
    p = pki.paths
    assert _mode(p.directory) == 0o700
    for secret in (p.server_ca_key, p.client_ca_key, p.client_cert, p.heartbeat_key):
        assert _mode(secret) == 0o600, secret
    assert len(pki.heartbeat_key()) == 32
    server_ca, client_ca = _cert(pki.server_ca_pem()), _cert(pki.client_ca_pem())
    assert server_ca.subject != client_ca.subject
    for ca in (server_ca, client_ca):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
        life = ca.not_valid_after_utc - ca.not_valid_before_utc
        assert timedelta(days=3649) < life < timedelta(days=3652)
    client = _cert(p.client_cert.read_bytes())
    client.verify_directly_issued_by(client_ca)
    assert _eku(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_init_is_idempotent_and_keeps_what_exists(tmp_path: Path) -> None:
    first = init_pki(tmp_path)
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    second = init_pki(tmp_path)
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before
    assert second.heartbeat_key() == first.heartbeat_key()


def test_concurrent_init_makes_one_pki(tmp_path: Path) -> None:
    results: list[bytes] = []

    def run() -> None:
        results.append(init_pki(tmp_path).server_ca_pem())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1


def test_a_client_cert_near_its_end_is_reissued(tmp_path: Path) -> None:
    pki = init_pki(tmp_path, cert_validity=timedelta(days=30))
    old = pki.paths.client_cert.read_bytes()
    assert init_pki(tmp_path, cert_validity=timedelta(days=30)).paths.client_cert.read_bytes() \
        == old
    # The same certificate judged against a longer validity has less than a third left.
    init_pki(tmp_path, cert_validity=timedelta(days=365))
    assert pki.paths.client_cert.read_bytes() != old


def test_a_damaged_or_half_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    pki = init_pki(tmp_path)
    pki.paths.server_ca_key.write_bytes(b"garbage")
    with pytest.raises(ConfigError):
        init_pki(tmp_path)
    assert pki.paths.server_ca_key.read_bytes() == b"garbage"
    pki.paths.server_ca_key.unlink()
    with pytest.raises(ConfigError, match="without its pair"):
        init_pki(tmp_path)


def test_a_bad_heartbeat_key_is_refused(tmp_path: Path) -> None:
    pki = init_pki(tmp_path)
    pki.paths.heartbeat_key.write_text("abcd\n")
    with pytest.raises(ConfigError, match="32 bytes"):
        init_pki(tmp_path)


def test_server_cert_names_the_amphora_serves_only_and_chains_to_the_server_ca(
        tmp_path: Path) -> None:
    pki = init_pki(tmp_path)
    pem, expiry = pki.issue_server_cert(AMP, timedelta(days=3))
    cert = _cert(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    assert key.public_key() == cert.public_key()  # type: ignore[comparison-overlap]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == AMP
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [AMP]
    assert _eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(_cert(pki.server_ca_pem()))
    with pytest.raises(Exception):  # noqa: B017 - any failure: wrong issuer
        cert.verify_directly_issued_by(_cert(pki.client_ca_pem()))
    assert expiry == cert.not_valid_after_utc
    assert timedelta(days=3, seconds=-2) <= expiry - datetime.now(UTC) <= timedelta(days=3)


def test_default_leaf_validity_is_the_pki_setting(tmp_path: Path) -> None:
    pki = init_pki(tmp_path, cert_validity=timedelta(days=7))
    _, expiry = pki.issue_server_cert(AMP)
    assert timedelta(days=7, seconds=-2) <= expiry - datetime.now(UTC) <= timedelta(days=7)


def test_leaf_can_be_backdated_for_tests_of_expiry(tmp_path: Path) -> None:
    pki = init_pki(tmp_path)
    ca_key = serialization.load_pem_private_key(pki.paths.client_ca_key.read_bytes(), None)
    ca = _cert(pki.client_ca_pem())
    _, cert = issue_leaf(ca_key, ca, "old", server=False,  # type: ignore[arg-type]
                         validity=timedelta(days=1),
                         not_before=datetime.now(UTC) - timedelta(days=10))
    assert cert.not_valid_after_utc < datetime.now(UTC)


def test_open_pki_needs_an_initialised_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="statera certs init"):
        open_pki(tmp_path)
    init_pki(tmp_path)
    assert open_pki(tmp_path).heartbeat_key()


def test_cli_init_prints_paths_never_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(certs_app, ["init", "--dir", str(tmp_path / "pki")])
    assert result.exit_code == 0, result.output
    assert "PKI ready" in result.output
    assert "PRIVATE KEY" not in result.output
    hb = (tmp_path / "pki" / "heartbeat.key").read_text().strip()
    assert hb not in result.output
    again = CliRunner().invoke(certs_app, ["init", "--dir", str(tmp_path / "pki")])
    assert again.exit_code == 0
    assert (tmp_path / "pki" / "heartbeat.key").read_text().strip() == hb


def test_cli_init_defaults_to_state_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("STATERA_DEFAULT__STATE_PATH", str(tmp_path))
    result = CliRunner().invoke(certs_app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pki" / "server_ca.pem").exists()
