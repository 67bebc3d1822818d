"""Heartbeat key material.

The master key is ``[health_manager] heartbeat_key`` (its UTF-8 bytes; settings refuse a short
or well-known one) or, when that is empty, the 32 random bytes of ``heartbeat.key`` in the PKI
directory, created 0600 on first start under the PKI's own lock (so a health manager and a
worker starting together on a fresh host agree on one key).

An amphora gets only the key it signs with: in per_amphora mode its own derived key, in
upstream mode the shared key itself (upstream's model).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from statera.config import Settings
from statera.drivers.certs.local_ca import HEARTBEAT_KEY_BYTES, Pki, PkiPaths, write_private
from statera.wire.heartbeat import UPSTREAM, derive_amphora_key


def ensure_key_file(directory: Path) -> bytes:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = PkiPaths(directory)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not paths.heartbeat_key.exists():
            write_private(paths.heartbeat_key,
                          secrets.token_bytes(HEARTBEAT_KEY_BYTES).hex().encode() + b"\n")
        os.chmod(paths.heartbeat_key, 0o600)
    finally:
        os.close(fd)
    return Pki(paths).heartbeat_key()


def master_key(settings: Settings) -> bytes:
    configured = settings.health_manager.heartbeat_key
    if configured:
        return configured.encode()
    return ensure_key_file(settings.pki_path)


def amphora_key(master: bytes, mode: str, amphora_id: str) -> bytes:
    """The key one amphora is given."""
    return master if mode == UPSTREAM else derive_amphora_key(master, amphora_id)
