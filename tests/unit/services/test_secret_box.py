"""Encryption at rest of the secret store: the key file and sealing."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from statera.domain.errors import ConfigError
from statera.services.secret_box import SecretBox, UnsealError, key_path, load_key
from tests.conftest import make_settings


def test_first_start_creates_a_private_random_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    path = key_path(settings)
    assert path == settings.pki_path / "secrets.key" and not path.exists()
    box = SecretBox.for_settings(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = load_key(path, create=False)
    assert len(key) == 32 and len(set(key)) > 1
    # The key is read back, not replaced, on the next start.
    sealed = box.seal(b"payload", bound_to="id-1")
    assert SecretBox.for_settings(settings).open(sealed, bound_to="id-1") == b"payload"
    assert key.hex() not in repr(box)


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "pki" / "secrets.key"
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_key(path, create=True)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.key"]


def test_the_configured_key_file_is_used_and_never_created(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.key"
    settings = make_settings(tmp_path, STATERA_CERTIFICATES__SECRETS_KEY_FILE=str(path))
    assert key_path(settings) == path
    with pytest.raises(ConfigError, match="missing"):
        SecretBox.for_settings(settings, create=False)


@pytest.mark.parametrize(("content", "why"), [
    (b"", "32 bytes"),
    (b"00" * 16, "32 bytes"),
    (b"00" * 32, "repeated byte"),
    (b"ab" * 32 + b"\n", "repeated byte"),
    (b"insecure-key-do-not-use-this-key", "published default"),
    (b"not hex at all, not hex at all, not hex at all, not hex at all.", "32 bytes"),
])
def test_weak_or_malformed_keys_are_refused(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "secrets.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=why) as info:
        load_key(path, create=True)
    if content:
        assert content.decode() not in info.value.text  # the message never echoes a key


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    path.write_bytes(os.urandom(32).hex().encode())
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(path, create=False)


def test_sealed_payloads_are_bound_to_their_secret_and_key() -> None:
    box, other = SecretBox(os.urandom(32)), SecretBox(os.urandom(32))
    sealed = box.seal(b"-----BEGIN PRIVATE KEY-----", bound_to="a")
    assert b"PRIVATE" not in sealed
    assert box.seal(b"same", bound_to="a") != box.seal(b"same", bound_to="a")  # fresh nonces
    assert box.open(sealed, bound_to="a") == b"-----BEGIN PRIVATE KEY-----"
    with pytest.raises(UnsealError, match="another secret"):
        box.open(sealed, bound_to="b")
    with pytest.raises(UnsealError, match="another secret store key"):
        other.open(sealed, bound_to="a")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(UnsealError, match="damaged"):
        box.open(tampered, bound_to="a")
    with pytest.raises(UnsealError, match="damaged"):
        box.open(b"\x02" + sealed[1:], bound_to="a")
