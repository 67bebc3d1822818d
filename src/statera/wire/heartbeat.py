"""Heartbeat v3: the UDP datagram an amphora sends to the health manager. Pure: no I/O.

The message is JSON (upstream's version 3)::

    {"id": "<amphora id>", "seq": 67, "ver": 3, "t": 1718000000.25,
     "listeners": {"<listener id>": {"status": "OPEN", "stats": {"tx": 0, "rx": 0,
                                     "conns": 0, "totconns": 0, "ereq": 0}}},
     "pools": {"<pool id>:<listener id>": {"status": "UP",
                                           "members": {"<member id>": "UP"}}}}

``stats`` are deltas since the previous message except ``conns`` (connections open now).
``t`` (send time, seconds since the epoch) is Statera's; upstream amphorae leave it out.

Two layouts, chosen by ``[health_manager] heartbeat_mode``:

``upstream``
    ``zlib(JSON) ‖ hex(HMAC-SHA256(key, zlib(JSON)))`` with one key shared by every amphora,
    byte for byte what an upstream amphora sends (its older 32-byte binary digest is accepted
    too). No replay protection beyond what the message says.

``per_amphora`` (default)
    ``b"STH1" ‖ amphora id (36 ASCII bytes) ‖ zlib(JSON) ‖ hex(HMAC-SHA256(k, all before))``
    where ``k = HMAC-SHA256(master key, amphora id)``: an amphora holds only its own key, so
    it cannot speak for another one. The id travels in clear so the receiver picks the key
    and checks the signature *before* decompressing anything; the JSON must name the same
    id. The receiver also refuses a sequence number not above the last one it accepted from
    that amphora and a send time outside its window (``ReplayGuard``).

Every check happens before any work that an unauthenticated sender could make expensive:
size first, then the HMAC, then a decompression capped at ``MAX_PAYLOAD`` bytes, then a strict
check of the JSON's shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

UPSTREAM = "upstream"
PER_AMPHORA = "per_amphora"
MODES = (PER_AMPHORA, UPSTREAM)

VERSION = 3
MAGIC = b"STH1"
ID_LEN = 36
DIGEST_HEX_LEN = 64
DIGEST_BIN_LEN = 32
# The largest UDP payload over IPv4; anything longer was not sent by an amphora.
MAX_DATAGRAM = 65507
# Decompressed JSON is capped: a small datagram must not expand into a large allocation.
MAX_PAYLOAD = 256 * 1024
MAX_STATUS_LEN = 32
MAX_COUNTER = 2**63 - 1

_UUID = re.compile(rb"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_UUID_STR = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                       r"[0-9a-fA-F]{12}$")
_STAT_KEYS = ("tx", "rx", "conns", "totconns", "ereq")
_EMPTY: dict[str, Any] = {}


class HeartbeatRejected(ValueError):
    """A datagram that is not a heartbeat Statera accepts. ``reason`` is a short fixed word
    (a metric label, and safe to log: it never contains packet bytes)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# Named tuples, not dataclasses: thousands are made per second, and they stay immutable.
class ListenerReport(NamedTuple):
    status: str
    bytes_out: int = 0
    bytes_in: int = 0
    active_connections: int = 0
    total_connections: int = 0
    request_errors: int = 0


class PoolReport(NamedTuple):
    status: str
    members: Mapping[str, str] = MappingProxyType({})


class Heartbeat(NamedTuple):
    amphora_id: str
    seq: int
    version: int
    sent_at: float | None
    listeners: Mapping[str, ListenerReport]
    pools: Mapping[str, PoolReport]
    """Keyed as sent: ``<pool id>:<listener id>`` (one entry per HAProxy backend)."""


@dataclass(frozen=True)
class AgentHeartbeat:
    """What the controller puts in each amphora's agent config about heartbeats; the key
    itself goes to a 0600 file next to it (``heartbeat_key_file``)."""

    controller_ip_port_list: tuple[str, ...]
    interval: int
    mode: str
    key_for: Callable[[str], bytes] = field(repr=False, compare=False)
    """The key one amphora is given (its derived key, or the shared one in upstream mode)."""

    def config_fields(self, key_file: str) -> dict[str, Any]:
        """Keyword arguments of the agent's AgentConfigFile."""
        return {"controller_ip_port_list": self.controller_ip_port_list,
                "heartbeat_interval": self.interval, "heartbeat_mode": self.mode,
                "heartbeat_key_file": key_file}


def derive_amphora_key(master_key: bytes, amphora_id: str) -> bytes:
    """The key one amphora signs with in per_amphora mode."""
    return hmac.new(master_key, amphora_id.lower().encode("ascii"), hashlib.sha256).digest()


# ---- sending ---------------------------------------------------------------------------------


def _compress(message: Mapping[str, Any]) -> bytes:
    return zlib.compress(json.dumps(message, separators=(",", ":")).encode(), 9)


def encode_upstream(message: Mapping[str, Any], key: bytes) -> bytes:
    payload = _compress(message)
    return payload + hmac.new(key, payload, hashlib.sha256).hexdigest().encode()


def encode_per_amphora(message: Mapping[str, Any], amphora_key: bytes) -> bytes:
    amphora_id = str(message["id"]).lower()
    if not _UUID_STR.match(amphora_id):
        raise ValueError("the message's id is not an amphora id")
    signed = MAGIC + amphora_id.encode("ascii") + _compress(message)
    return signed + hmac.new(amphora_key, signed, hashlib.sha256).hexdigest().encode()


def encode(message: Mapping[str, Any], key: bytes, mode: str) -> bytes:
    """``key``: the shared key (upstream) or this amphora's own key (per_amphora)."""
    if mode == UPSTREAM:
        return encode_upstream(message, key)
    if mode == PER_AMPHORA:
        return encode_per_amphora(message, key)
    raise ValueError(f"unknown heartbeat mode {mode!r}")


# ---- receiving -------------------------------------------------------------------------------


def _verified(signed: bytes, digest: bytes, key: bytes) -> bool:
    mac = hmac.new(key, signed, hashlib.sha256)
    if len(digest) == DIGEST_HEX_LEN:
        return hmac.compare_digest(mac.hexdigest().encode(), digest)
    return hmac.compare_digest(mac.digest(), digest)


def _inflate(payload: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload, MAX_PAYLOAD)
    except zlib.error:
        raise HeartbeatRejected("malformed", "not zlib data") from None
    if inflater.unconsumed_tail:
        raise HeartbeatRejected("too_large", f"expands beyond {MAX_PAYLOAD} bytes")
    if not inflater.eof:
        raise HeartbeatRejected("truncated", "the compressed stream ends early")
    if inflater.unused_data:
        raise HeartbeatRejected("malformed", "bytes after the compressed stream")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HeartbeatRejected("bad_json") from None


def decode_upstream(packet: bytes, key: bytes) -> Heartbeat:
    """A heartbeat in upstream's layout, signed with the shared key."""
    if len(packet) > MAX_DATAGRAM:
        raise HeartbeatRejected("oversized")
    if len(packet) <= DIGEST_HEX_LEN:
        raise HeartbeatRejected("truncated", "shorter than a signature")
    payload, digest = packet[:-DIGEST_HEX_LEN], packet[-DIGEST_HEX_LEN:]
    if not _verified(payload, digest, key):
        # Upstream amphorae of old releases sent the binary digest.
        payload, digest = packet[:-DIGEST_BIN_LEN], packet[-DIGEST_BIN_LEN:]
        if not _verified(payload, digest, key):
            raise HeartbeatRejected("bad_hmac")
    return parse_message(_load_json(_inflate(payload)))


def envelope_id(packet: bytes) -> str:
    """The amphora id a per_amphora datagram claims (not yet verified)."""
    if len(packet) > MAX_DATAGRAM:
        raise HeartbeatRejected("oversized")
    if len(packet) <= len(MAGIC) + ID_LEN + DIGEST_HEX_LEN:
        raise HeartbeatRejected("truncated", "shorter than the envelope")
    if not packet.startswith(MAGIC):
        raise HeartbeatRejected("bad_envelope", "not a per-amphora heartbeat")
    raw_id = packet[len(MAGIC):len(MAGIC) + ID_LEN]
    if not _UUID.match(raw_id):
        raise HeartbeatRejected("bad_envelope", "the amphora id is not a lower-case UUID")
    return raw_id.decode("ascii")


def decode_per_amphora(packet: bytes, key_for: Callable[[str], bytes]) -> Heartbeat:
    """A heartbeat in Statera's per-amphora layout; ``key_for(id)`` gives that amphora's key."""
    amphora_id = envelope_id(packet)
    signed, digest = packet[:-DIGEST_HEX_LEN], packet[-DIGEST_HEX_LEN:]
    if not _verified(signed, digest, key_for(amphora_id)):
        raise HeartbeatRejected("bad_hmac")
    hb = parse_message(_load_json(_inflate(signed[len(MAGIC) + ID_LEN:])))
    if hb.amphora_id != amphora_id:
        raise HeartbeatRejected("id_mismatch", "the message names another amphora")
    if hb.sent_at is None:
        raise HeartbeatRejected("bad_shape", "per-amphora heartbeats carry a send time")
    return hb


# ---- the message's shape ---------------------------------------------------------------------


def _bad(what: str) -> HeartbeatRejected:
    return HeartbeatRejected("bad_shape", what)


# The checks below run for every heartbeat: written as plain loops with exact type tests
# (``type(x) is int`` also refuses booleans), few calls per field.


def _uuid(value: Any, what: str) -> str:
    if type(value) is not str or len(value) != ID_LEN or not _UUID_STR.match(value):
        raise _bad(f"{what} is not a UUID")
    return value.lower()


def _status(value: Any, what: str) -> str:
    if (type(value) is not str or not 0 < len(value) <= MAX_STATUS_LEN
            or not value.isprintable()):
        raise _bad(f"{what} is not a status")
    return value


def _listener(value: Any, lid: str) -> ListenerReport:
    if type(value) is not dict:
        raise _bad(f"listener {lid} is not an object")
    stats = value.get("stats", _EMPTY)
    if type(stats) is not dict:
        raise _bad(f"listener {lid} stats is not an object")
    counters = []
    for key in _STAT_KEYS:
        v = stats.get(key, 0)
        if type(v) is not int or not 0 <= v <= MAX_COUNTER:
            raise _bad(f"listener {lid} {key} is not a counter")
        counters.append(v)
    tx, rx, conns, totconns, ereq = counters
    return ListenerReport(_status(value.get("status"), f"listener {lid} status"),
                          tx, rx, conns, totconns, ereq)


def _pool_key(key: str) -> str:
    pool_id, sep, listener_id = key.partition(":")
    _uuid(pool_id, "a pool key")
    if sep:
        _uuid(listener_id, "a pool key's listener")
    return key.lower()


def _pool(value: Any, key: str) -> PoolReport:
    if type(value) is not dict:
        raise _bad(f"pool {key} is not an object")
    members = value.get("members", _EMPTY)
    if type(members) is not dict:
        raise _bad(f"pool {key} members is not an object")
    return PoolReport(
        _status(value.get("status"), f"pool {key} status"),
        {_uuid(mid, "a member id"): _status(st, "a member status")
         for mid, st in members.items()})


def parse_message(obj: Any) -> Heartbeat:
    """Check every field the health manager reads; unknown extra fields are ignored."""
    if type(obj) is not dict:
        raise _bad("the message is not an object")
    version = obj.get("ver")
    if type(version) is not int or not 2 <= version <= 3:
        raise _bad("unsupported version")
    seq = obj.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_COUNTER:
        raise _bad("seq is not a counter")
    sent_at = obj.get("t")
    if sent_at is not None and (type(sent_at) not in (int, float) or not math.isfinite(sent_at)
                                or sent_at <= 0):
        raise _bad("t is not a time")
    listeners = obj.get("listeners", _EMPTY)
    pools = obj.get("pools", _EMPTY)
    if type(listeners) is not dict or type(pools) is not dict:
        raise _bad("listeners and pools must be objects")
    return Heartbeat(
        _uuid(obj.get("id"), "id"), seq, version,
        float(sent_at) if sent_at is not None else None,
        {_uuid(k, "a listener id"): _listener(v, k) for k, v in listeners.items()},
        {_pool_key(k): _pool(v, k) for k, v in pools.items()},
    )


# ---- the receiving side's state --------------------------------------------------------------


class HeartbeatDecoder:
    """The health manager's decoder for one mode and key. Per-amphora keys are derived once
    and remembered (bounded)."""

    def __init__(self, mode: str, key: bytes, *, key_cache_size: int = 100_000) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown heartbeat mode {mode!r}")
        if not key:
            raise ValueError("a heartbeat key is required")
        self.mode = mode
        self._key = key
        self._keys: dict[str, bytes] = {}
        self._cache_size = key_cache_size

    def _key_for(self, amphora_id: str) -> bytes:
        key = self._keys.get(amphora_id)
        if key is None:
            if len(self._keys) >= self._cache_size:
                self._keys.clear()
            key = self._keys[amphora_id] = derive_amphora_key(self._key, amphora_id)
        return key

    def decode(self, packet: bytes) -> Heartbeat:
        if self.mode == UPSTREAM:
            return decode_upstream(packet, self._key)
        return decode_per_amphora(packet, self._key_for)


class ReplayGuard:
    """Per-amphora replay protection: a sequence number above the last accepted one, and a
    send time within ``window`` seconds of the receiver's clock."""

    def __init__(self, window: float) -> None:
        if window <= 0:
            raise ValueError("the replay window must be positive")
        self.window = window
        self._last: dict[str, int] = {}

    def check(self, hb: Heartbeat, now: float) -> None:
        """Raise HeartbeatRejected unless ``hb`` is new; does not record it."""
        if hb.sent_at is None:
            raise HeartbeatRejected("no_time", "a send time is required")
        if abs(now - hb.sent_at) > self.window:
            raise HeartbeatRejected("outside_window", "send time too far from our clock")
        last = self._last.get(hb.amphora_id)
        if last is not None and hb.seq <= last:
            raise HeartbeatRejected("replayed", "sequence number not above the last one")

    def record(self, hb: Heartbeat) -> None:
        last = self._last.get(hb.amphora_id)
        if last is None or hb.seq > last:
            self._last[hb.amphora_id] = hb.seq

    def accept(self, hb: Heartbeat, now: float) -> None:
        self.check(hb, now)
        self.record(hb)

    def last_seq(self, amphora_id: str) -> int | None:
        return self._last.get(amphora_id)

    def seed(self, last: dict[str, int]) -> None:
        """Remember sequence numbers accepted before (by an earlier run, from the database)."""
        for amphora_id, seq in last.items():
            known = self._last.get(amphora_id)
            if known is None or seq > known:
                self._last[amphora_id] = seq

    def forget(self, amphora_id: str) -> None:
        self._last.pop(amphora_id, None)

    def __len__(self) -> int:
        return len(self._last)
