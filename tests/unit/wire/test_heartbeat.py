"""Heartbeat v3 codec: both layouts round trip, and every SEC-5 rejection happens for the
reason it should, before any expensive work."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
import zlib
from typing import Any

import pytest

from statera.wire import heartbeat as hb
from statera.wire.heartbeat import HeartbeatDecoder, HeartbeatRejected, ReplayGuard

MASTER = b"m" * 32
AMP = str(uuid.uuid4())
OTHER = str(uuid.uuid4())
LISTENER = str(uuid.uuid4())
POOL = str(uuid.uuid4())
MEMBER = str(uuid.uuid4())


def message(amp: str = AMP, seq: int = 1, t: float | None = 1000.0, **extra: Any) -> dict:
    msg: dict[str, Any] = {
        "id": amp, "seq": seq, "ver": 3,
        "listeners": {LISTENER: {"status": "OPEN", "stats": {
            "tx": 10, "rx": 20, "conns": 3, "totconns": 4, "ereq": 1}}},
        "pools": {f"{POOL}:{LISTENER}": {"status": "UP", "members": {MEMBER: "UP 1/3"}}},
    }
    if t is not None:
        msg["t"] = t
    msg.update(extra)
    return msg


def per_amp(msg: dict, amp: str = AMP) -> bytes:
    return hb.encode_per_amphora(msg, hb.derive_amphora_key(MASTER, amp))


def rejected(fn: Any, *args: Any) -> str:
    with pytest.raises(HeartbeatRejected) as info:
        fn(*args)
    return info.value.reason


def upstream_packet(payload: bytes, key: bytes = MASTER) -> bytes:
    return payload + hmac.new(key, payload, hashlib.sha256).hexdigest().encode()


# ---- round trips -----------------------------------------------------------------------------


def test_upstream_layout_is_zlib_json_then_hex_hmac() -> None:
    packet = hb.encode_upstream(message(), MASTER)
    payload, digest = packet[:-64], packet[-64:]
    assert digest == hmac.new(MASTER, payload, hashlib.sha256).hexdigest().encode()
    assert json.loads(zlib.decompress(payload))["id"] == AMP
    decoded = hb.decode_upstream(packet, MASTER)
    assert decoded.amphora_id == AMP and decoded.seq == 1 and decoded.version == 3
    report = decoded.listeners[LISTENER]
    assert (report.status, report.bytes_out, report.bytes_in, report.active_connections,
            report.total_connections, report.request_errors) == ("OPEN", 10, 20, 3, 4, 1)
    assert decoded.pools[f"{POOL}:{LISTENER}"].members == {MEMBER: "UP 1/3"}


def test_upstream_packet_made_as_an_upstream_amphora_makes_it_decodes() -> None:
    # An upstream amphora: json.dumps with default separators, zlib level 9, no "t".
    body = {"id": AMP, "seq": 67, "ver": 3, "listeners": {}, "pools": {}}
    packet = upstream_packet(zlib.compress(json.dumps(body).encode(), 9))
    decoded = hb.decode_upstream(packet, MASTER)
    assert decoded.seq == 67 and decoded.sent_at is None


def test_upstream_old_binary_digest_is_accepted() -> None:
    payload = zlib.compress(json.dumps(message()).encode())
    packet = payload + hmac.new(MASTER, payload, hashlib.sha256).digest()
    assert hb.decode_upstream(packet, MASTER).amphora_id == AMP


def test_per_amphora_round_trip_and_envelope() -> None:
    packet = per_amp(message())
    assert packet.startswith(b"STH1" + AMP.encode())
    decoded = HeartbeatDecoder(hb.PER_AMPHORA, MASTER).decode(packet)
    assert decoded.amphora_id == AMP and decoded.sent_at == 1000.0


def test_derived_keys_differ_per_amphora_and_from_the_master() -> None:
    a, b = hb.derive_amphora_key(MASTER, AMP), hb.derive_amphora_key(MASTER, OTHER)
    assert len({a, b, MASTER}) == 3
    assert hb.derive_amphora_key(MASTER, AMP.upper()) == a


def test_version_2_pool_keys_without_listener_are_accepted() -> None:
    msg = message(ver=2)
    msg["pools"] = {POOL: {"status": "DOWN", "members": {}}}
    assert hb.decode_upstream(hb.encode_upstream(msg, MASTER), MASTER).pools[POOL].status \
        == "DOWN"


# ---- SEC-5: rejections -----------------------------------------------------------------------


def test_bad_hmac_is_rejected_in_both_modes() -> None:
    packet = bytearray(hb.encode_upstream(message(), MASTER))
    packet[5] ^= 1
    assert rejected(hb.decode_upstream, bytes(packet), MASTER) == "bad_hmac"
    assert rejected(hb.decode_upstream, hb.encode_upstream(message(), b"k" * 32),
                    MASTER) == "bad_hmac"
    forged = bytearray(per_amp(message()))
    forged[-1] = ord("0") if forged[-1] != ord("0") else ord("1")
    dec = HeartbeatDecoder(hb.PER_AMPHORA, MASTER)
    assert rejected(dec.decode, bytes(forged)) == "bad_hmac"


def test_truncated_packets_are_rejected() -> None:
    dec = HeartbeatDecoder(hb.PER_AMPHORA, MASTER)
    packet = per_amp(message())
    for cut in (0, 3, 40, 100, len(packet) - 1):
        assert rejected(dec.decode, packet[:cut]) in ("truncated", "bad_hmac", "bad_envelope")
    assert rejected(hb.decode_upstream, b"x" * 10, MASTER) == "truncated"
    # Correctly signed but the zlib stream itself is cut short.
    stream = zlib.compress(json.dumps(message()).encode())[:-6]
    assert rejected(hb.decode_upstream, upstream_packet(stream), MASTER) == "truncated"


def test_zip_bomb_is_rejected_without_inflating_it() -> None:
    bomb = zlib.compress(b"[" + b" " * (16 * 1024 * 1024) + b"]", 9)
    assert len(bomb) < hb.MAX_DATAGRAM
    assert rejected(hb.decode_upstream, upstream_packet(bomb), MASTER) == "too_large"
    # And unsigned, it never reaches the decompressor at all.
    assert rejected(hb.decode_upstream, bomb + b"0" * 64, MASTER) == "bad_hmac"


def test_oversized_datagrams_are_rejected_before_the_hmac() -> None:
    big = b"\x00" * (hb.MAX_DATAGRAM + 1)
    assert rejected(hb.decode_upstream, big, MASTER) == "oversized"
    assert rejected(HeartbeatDecoder(hb.PER_AMPHORA, MASTER).decode, b"STH1" + big) \
        == "oversized"


def test_cross_amphora_packets_are_rejected() -> None:
    dec = HeartbeatDecoder(hb.PER_AMPHORA, MASTER)
    key_a = hb.derive_amphora_key(MASTER, AMP)
    # A signs a message that claims B's id: the envelope names B, A's key does not verify.
    assert rejected(dec.decode, hb.encode_per_amphora(message(amp=OTHER), key_a)) == "bad_hmac"
    # A's envelope (verifies) around a message naming B.
    signed = b"STH1" + AMP.encode() + zlib.compress(json.dumps(message(amp=OTHER)).encode())
    packet = signed + hmac.new(key_a, signed, hashlib.sha256).hexdigest().encode()
    assert rejected(dec.decode, packet) == "id_mismatch"


def test_per_amphora_requires_its_layout_and_a_send_time() -> None:
    dec = HeartbeatDecoder(hb.PER_AMPHORA, MASTER)
    assert rejected(dec.decode, hb.encode_upstream(message(), MASTER)) == "bad_envelope"
    assert rejected(dec.decode, per_amp(message(t=None))) == "bad_shape"
    upper = b"STH1" + AMP.upper().encode() + b"x" * 80
    assert rejected(dec.decode, upper) == "bad_envelope"


@pytest.mark.parametrize("mutate", [
    lambda m: m.update(id="not-a-uuid"),
    lambda m: m.update(seq=-1),
    lambda m: m.update(seq="1"),
    lambda m: m.update(seq=True),
    lambda m: m.update(ver=4),
    lambda m: m.update(ver=1),
    lambda m: m.update(t="now"),
    lambda m: m.update(t=-5),
    lambda m: m.update(listeners=[]),
    lambda m: m.update(pools="x"),
    lambda m: m["listeners"].update({"nope": {"status": "OPEN"}}),
    lambda m: m["listeners"][LISTENER].update(status=""),
    lambda m: m["listeners"][LISTENER].update(status="X" * 33),
    lambda m: m["listeners"][LISTENER].update(status="OPEN\n"),
    lambda m: m["listeners"][LISTENER].update(stats={"tx": -1}),
    lambda m: m["listeners"][LISTENER].update(stats={"tx": 2**64}),
    lambda m: m["listeners"][LISTENER].update(stats={"tx": 1.5}),
    lambda m: m["listeners"][LISTENER].update(stats=[]),
    lambda m: m["pools"].update({"x:y": {"status": "UP", "members": {}}}),
    lambda m: m["pools"][f"{POOL}:{LISTENER}"].update(members={"m": "UP"}),
    lambda m: m["pools"][f"{POOL}:{LISTENER}"].update(members={MEMBER: 3}),
    lambda m: m["pools"][f"{POOL}:{LISTENER}"].update(status=None),
])
def test_wrong_json_shapes_are_rejected(mutate: Any) -> None:
    msg = message()
    mutate(msg)
    assert rejected(hb.decode_upstream, hb.encode_upstream(msg, MASTER), MASTER) == "bad_shape"


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b"NaN", b'{"t": Infinity}', b"\xff\xfe"])
def test_not_json_or_not_an_object(body: bytes) -> None:
    reason = rejected(hb.decode_upstream, upstream_packet(zlib.compress(body)), MASTER)
    assert reason in ("bad_json", "bad_shape")


def test_garbage_after_the_stream_and_non_zlib_are_malformed() -> None:
    good = zlib.compress(json.dumps(message()).encode())
    assert rejected(hb.decode_upstream, upstream_packet(good + b"junk"), MASTER) == "malformed"
    assert rejected(hb.decode_upstream, upstream_packet(b"not zlib at all"), MASTER) \
        == "malformed"


# ---- replay protection -----------------------------------------------------------------------


def decoded(seq: int, t: float, amp: str = AMP) -> hb.Heartbeat:
    return hb.parse_message(message(amp=amp, seq=seq, t=t))


def test_replay_guard_refuses_old_and_equal_sequences_per_amphora() -> None:
    guard = ReplayGuard(window=5)
    guard.accept(decoded(10, 1000), now=1000)
    for seq in (10, 9, 0):
        assert rejected(guard.accept, decoded(seq, 1000), 1000) == "replayed"
    guard.accept(decoded(11, 1001), now=1001)
    guard.accept(decoded(1, 1001, amp=OTHER), now=1001)  # another amphora's own sequence
    assert guard.last_seq(AMP) == 11 and guard.last_seq(OTHER) == 1


def test_replay_guard_refuses_send_times_outside_the_window() -> None:
    guard = ReplayGuard(window=5)
    assert rejected(guard.accept, decoded(1, 990), 1000) == "outside_window"
    assert rejected(guard.accept, decoded(1, 1006), 1000) == "outside_window"
    assert guard.last_seq(AMP) is None  # a refused one is not recorded
    guard.accept(decoded(1, 995), now=1000)
    assert rejected(guard.accept, hb.parse_message(message(t=None)), 1000) == "no_time"


def test_replay_guard_check_does_not_record() -> None:
    guard = ReplayGuard(window=5)
    guard.check(decoded(3, 1000), now=1000)
    guard.check(decoded(3, 1000), now=1000)
    guard.record(decoded(3, 1000))
    assert rejected(guard.check, decoded(3, 1000), 1000) == "replayed"
    guard.forget(AMP)
    guard.check(decoded(3, 1000), now=1000)


def test_decoder_refuses_unknown_modes_and_empty_keys() -> None:
    with pytest.raises(ValueError):
        HeartbeatDecoder("other", MASTER)
    with pytest.raises(ValueError):
        HeartbeatDecoder(hb.UPSTREAM, b"")
    with pytest.raises(ValueError):
        hb.encode(message(), MASTER, "other")
