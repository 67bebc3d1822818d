"""Certificate files and the server certificate checks."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from statera.agent.certs import CertStore, check_server_pem
from statera.agent.errors import BadRequest, NotFound
from statera.drivers.certs.local_ca import init_pki

LB = str(uuid.uuid4())


def test_store_round_trip_and_cleanup(tmp_path: Path) -> None:
    store = CertStore(tmp_path)
    md5 = store.put(LB, "a.pem", b"-----BEGIN CERTIFICATE-----\n")
    assert store.md5(LB, "a.pem") == md5
    store.remove_all(LB)
    with pytest.raises(NotFound):
        store.md5(LB, "a.pem")
    with pytest.raises(BadRequest):
        store.put(LB, "a.crt-list", b"bad\0list")
    with pytest.raises(BadRequest):
        store.put(LB, "a.pem", b"-----BEGIN " + b"x" * (1024 * 1024))


def test_server_pem_must_pair_key_and_cert_and_name_the_amphora(tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki")
    amp = str(uuid.uuid4())
    pem, _ = pki.issue_server_cert(amp)
    check_server_pem(pem, amp, tmp_path / "scratch")
    with pytest.raises(BadRequest, match="another amphora"):
        check_server_pem(pem, str(uuid.uuid4()), tmp_path / "scratch")
    other, _ = pki.issue_server_cert(amp)
    key_of_other = other[:other.index(b"-----BEGIN CERTIFICATE")]
    cert_of_first = pem[pem.index(b"-----BEGIN CERTIFICATE"):]
    with pytest.raises(BadRequest, match="private key"):
        check_server_pem(key_of_other + cert_of_first, amp, tmp_path / "scratch")
    assert list((tmp_path / "scratch").iterdir()) == []
