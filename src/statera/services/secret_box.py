"""Encryption at rest of the tenant secret store: AES-256-GCM under a key kept in a file.

The key file holds 32 random bytes as hex, is created 0600 on first start (beside the PKI
unless ``[certificates] secrets_key_file`` names another place) and is never logged nor
stored in the database. The database holds only sealed payloads::

    version (1 byte, 1) | key id (8 bytes) | nonce (12 bytes) | AES-GCM ciphertext and tag

The key id (a digest of the key) tells a payload sealed under another key from a damaged
one. Each payload is bound to its secret's id (associated data), so ciphertexts cannot be
moved from one row to another.

A key file that is empty, short, one repeated byte, upstream's published default, or open to
other users is refused: Statera does not run with a key anyone could know.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from statera.config import Settings
from statera.domain.errors import ConfigError

KEY_BYTES = 32
KEY_FILE_NAME = "secrets.key"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_ID_BYTES = 8
# Octavia's default server_certs_key_passphrase: known to everyone, so never a key.
_PUBLISHED_DEFAULTS = frozenset({b"insecure-key-do-not-use-this-key"})


class UnsealError(Exception):
    """A sealed payload cannot be opened with this key (another key, or damaged)."""


def key_path(settings: Settings) -> Path:
    configured = settings.certificates.secrets_key_file
    return Path(configured) if configured else settings.pki_path / KEY_FILE_NAME


def _check_key(path: Path, raw: bytes) -> bytes:
    text = raw.strip()
    if text in _PUBLISHED_DEFAULTS:
        raise ConfigError(f"{path} holds a published default key; create a random one.")
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(f"{path}: the secret store key must be {KEY_BYTES} bytes in "
                          "hex.") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path}: the secret store key must be {KEY_BYTES} bytes in hex.")
    if len(set(key)) == 1:
        raise ConfigError(f"{path}: the secret store key is one repeated byte; create a "
                          "random one.")
    return key


def _create(path: Path) -> None:
    """Write a new random key, 0600 from its first byte; lose gracefully to a concurrent
    start that wrote one first (link() fails on an existing name)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES).hex().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_key(path: Path, *, create: bool) -> bytes:
    """The key in ``path`` (created first if missing and ``create``); ConfigError if it is
    missing, weak or readable by others."""
    if create and not path.exists():
        _create(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"The secret store key {path} is missing.") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users: chmod 600 it.")
    return _check_key(path, raw)


class SecretBox:
    """Seals and opens payloads with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the key must be 32 bytes")
        self._aead = AESGCM(key)
        self._key_id = hashlib.sha256(b"statera secret store key id" + key).digest()[
            :_KEY_ID_BYTES]

    @classmethod
    def for_settings(cls, settings: Settings, *, create: bool = True) -> SecretBox:
        return cls(load_key(key_path(settings), create=create))

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self._key_id.hex()})"

    def seal(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, bound_to.encode())
        return _VERSION + self._key_id + nonce + sealed

    def open(self, blob: bytes, *, bound_to: str) -> bytes:
        head = 1 + _KEY_ID_BYTES
        if len(blob) < head + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise UnsealError("the sealed payload is damaged")
        if blob[1:head] != self._key_id:
            raise UnsealError("the payload was sealed under another secret store key")
        nonce, sealed = blob[head:head + _NONCE_BYTES], blob[head + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, bound_to.encode())
        except InvalidTag:
            raise UnsealError("the sealed payload is damaged or belongs to another "
                              "secret") from None
