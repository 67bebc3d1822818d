"""From datagrams to a batch: verification, replay checks and coalescing, without I/O.

Each accepted heartbeat goes into the current ``Batch``: the newest one per amphora (for
health and statuses) and the sum of every statistics delta (none is lost by coalescing).
The health manager swaps the batch out and writes it in one transaction per interval.

A rejected datagram costs one HMAC at most: sizes and the signature are checked before
anything is decompressed, and nothing about it is kept but a counter by reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from statera.wire.heartbeat import (
    PER_AMPHORA,
    Heartbeat,
    HeartbeatDecoder,
    HeartbeatRejected,
    ReplayGuard,
)

LOG = logging.getLogger(__name__)
ACCEPTED = "accepted"

# (bytes_in, bytes_out, active_connections, total_connections, request_errors)
StatsRow = list[int]


@dataclass
class Received:
    heartbeat: Heartbeat
    received_at: float
    source: str


@dataclass
class Batch:
    latest: dict[str, Received] = field(default_factory=dict)
    stats: dict[tuple[str, str], StatsRow] = field(default_factory=dict)
    """(amphora id, listener id) -> summed deltas; active connections is the latest value."""
    heartbeats: int = 0

    def add(self, rec: Received) -> None:
        hb = rec.heartbeat
        self.heartbeats += 1
        seen = self.latest.get(hb.amphora_id)
        if seen is None or rec.received_at >= seen.received_at:
            self.latest[hb.amphora_id] = rec
        for listener_id, report in hb.listeners.items():
            row = self.stats.get((hb.amphora_id, listener_id))
            if row is None:
                self.stats[(hb.amphora_id, listener_id)] = [
                    report.bytes_in, report.bytes_out, report.active_connections,
                    report.total_connections, report.request_errors]
            else:
                row[0] += report.bytes_in
                row[1] += report.bytes_out
                row[2] = report.active_connections
                row[3] += report.total_connections
                row[4] += report.request_errors

    def merge_older(self, older: Batch) -> None:
        """Put back a batch that could not be written, under this newer one."""
        for amp_id, rec in older.latest.items():
            seen = self.latest.get(amp_id)
            if seen is None or rec.received_at > seen.received_at:
                self.latest[amp_id] = rec
        for key, row in older.stats.items():
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = row
            else:
                mine[0] += row[0]
                mine[1] += row[1]
                mine[3] += row[3]
                mine[4] += row[4]
        self.heartbeats += older.heartbeats

    def __bool__(self) -> bool:
        return bool(self.latest)


class Intake:
    """Verifies datagrams and fills the current batch."""

    def __init__(self, decoder: HeartbeatDecoder, replay_window: float) -> None:
        self.decoder = decoder
        self.guard = ReplayGuard(replay_window) if decoder.mode == PER_AMPHORA else None
        self.batch = Batch()
        self.counts: Counter[str] = Counter()
        # Management address each amphora must send from, learnt from the database.
        self.expected_source: dict[str, str] = {}

    def receive(self, data: bytes, source: str, now: float) -> str:
        """``ACCEPTED`` or the reason the datagram was dropped."""
        try:
            hb = self.decoder.decode(data)
            expected = self.expected_source.get(hb.amphora_id)
            if expected and expected != source:
                raise HeartbeatRejected("wrong_source")
            if self.guard is not None:
                self.guard.accept(hb, now)
        except HeartbeatRejected as exc:
            self.counts[exc.reason] += 1
            return exc.reason
        self.batch.add(Received(hb, now, source))
        self.counts[ACCEPTED] += 1
        return ACCEPTED

    def take(self) -> Batch:
        batch, self.batch = self.batch, Batch()
        return batch

    def put_back(self, batch: Batch) -> None:
        self.batch.merge_older(batch)
