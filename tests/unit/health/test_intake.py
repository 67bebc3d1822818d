"""Intake: verification order, replay and source checks, and coalescing into a batch."""

from __future__ import annotations

import uuid
from typing import Any

from statera.health.intake import ACCEPTED, Batch, Intake
from statera.wire import heartbeat as hb

MASTER = b"k" * 32
AMP = str(uuid.uuid4())
LISTENER = str(uuid.uuid4())


def packet(seq: int, t: float = 100.0, amp: str = AMP, rx: int = 5, conns: int = 1,
           mode: str = hb.PER_AMPHORA) -> bytes:
    msg: dict[str, Any] = {"id": amp, "seq": seq, "ver": 3, "t": t, "pools": {},
                           "listeners": {LISTENER: {"status": "OPEN", "stats": {
                               "rx": rx, "tx": 2 * rx, "conns": conns, "totconns": 1,
                               "ereq": 0}}}}
    key = hb.derive_amphora_key(MASTER, amp) if mode == hb.PER_AMPHORA else MASTER
    return hb.encode(msg, key, mode)


def intake(mode: str = hb.PER_AMPHORA) -> Intake:
    return Intake(hb.HeartbeatDecoder(mode, MASTER), replay_window=5)


def test_accepted_heartbeats_coalesce_and_sum_their_deltas() -> None:
    i = intake()
    for seq in range(1, 4):
        assert i.receive(packet(seq, rx=10 * seq, conns=seq), "10.0.0.5", now=100) == ACCEPTED
    batch = i.take()
    assert batch.heartbeats == 3
    assert batch.latest[AMP].heartbeat.seq == 3
    assert batch.stats[(AMP, LISTENER)] == [60, 120, 3, 3, 0]  # conns is the latest value
    assert not i.take()


def test_rejections_are_counted_and_leave_the_batch_alone() -> None:
    i = intake()
    assert i.receive(packet(1), "10.0.0.5", now=100) == ACCEPTED
    assert i.receive(packet(1), "10.0.0.5", now=100) == "replayed"
    assert i.receive(packet(2, t=50), "10.0.0.5", now=100) == "outside_window"
    assert i.receive(b"garbage" * 20, "10.0.0.5", now=100) == "bad_envelope"
    good = packet(3)
    tampered = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")  # always a different digest
    assert i.receive(tampered, "10.0.0.5", now=100) == "bad_hmac"
    assert dict(i.counts) == {ACCEPTED: 1, "replayed": 1, "outside_window": 1,
                              "bad_envelope": 1, "bad_hmac": 1}
    assert i.take().heartbeats == 1


def test_wrong_source_is_refused_once_the_address_is_known_and_not_recorded() -> None:
    i = intake()
    i.expected_source[AMP] = "10.0.0.5"
    assert i.receive(packet(5), "10.0.0.66", now=100) == "wrong_source"
    # The same packet from the right address still counts: the forgery burnt nothing.
    assert i.receive(packet(5), "10.0.0.5", now=100) == ACCEPTED


def test_upstream_mode_has_no_replay_guard() -> None:
    i = intake(hb.UPSTREAM)
    assert i.guard is None
    assert i.receive(packet(1, mode=hb.UPSTREAM), "127.0.0.1", now=100) == ACCEPTED
    assert i.receive(packet(1, mode=hb.UPSTREAM), "127.0.0.1", now=100) == ACCEPTED


def test_a_batch_put_back_merges_under_the_newer_one() -> None:
    i = intake()
    i.receive(packet(1, rx=1), "10.0.0.5", now=100)
    old = i.take()
    i.receive(packet(2, rx=2, conns=7), "10.0.0.5", now=101)
    i.put_back(old)
    batch = i.take()
    assert batch.latest[AMP].heartbeat.seq == 2
    assert batch.stats[(AMP, LISTENER)][0] == 3
    assert batch.stats[(AMP, LISTENER)][2] == 7
    assert batch.heartbeats == 2


def test_empty_batch_is_false() -> None:
    assert not Batch()
