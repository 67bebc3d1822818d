"""The health manager's guards against judging amphorae on its own failures: the start-up
grace and a database outage (CP-5: no mass failover when the database comes back)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from statera.config.settings import HealthManagerSection
from statera.db import models as m
from statera.db.database import Database
from statera.domain.errors import ServiceUnavailable
from statera.health.manager import HealthManager
from statera.wire import heartbeat as wire
from tests.conftest import _migrated_sqlite

MASTER = b"unit-master-key-0123456789abcdef"


class DownDatabase:
    """A database that cannot be reached: every read and write fails as Database does."""

    def write_retrying(self, fn: Any, *, attempts: int = 8) -> Any:
        raise ServiceUnavailable("The database is unavailable right now; try again shortly.")

    def read(self) -> Any:
        raise ServiceUnavailable("The database is unavailable right now; try again shortly.")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Any:
    _migrated_sqlite(tmp_path)
    database = Database(f"sqlite:///{tmp_path / 'statera.db'}")
    yield database
    database.dispose()
    shutil.rmtree(tmp_path, ignore_errors=True)


def conf() -> HealthManagerSection:
    c = HealthManagerSection()
    c.heartbeat_timeout = 3.0
    return c


def packet(amp: str, seq: int, t: float) -> bytes:
    msg = {"id": amp, "seq": seq, "ver": 3, "t": t, "listeners": {}, "pools": {}}
    return wire.encode(msg, wire.derive_amphora_key(MASTER, amp), wire.PER_AMPHORA)


def add_amphora(db: Database) -> str:
    amp_id = str(uuid.uuid4())
    with db.write() as s:
        s.add(m.Amphora(id=amp_id, status="ALLOCATED", lb_network_ip="127.0.0.1"))
    return amp_id


def test_nobody_is_judged_during_the_start_up_grace() -> None:
    clock = Clock()
    hm = HealthManager(conf(), DownDatabase(), MASTER,  # type: ignore[arg-type]
                       bind=("127.0.0.1", 0), clock=clock)
    clock.now += 2.9
    assert hm.check_stale() is None  # the database is not even asked
    clock.now += 0.2
    with pytest.raises(ServiceUnavailable):
        hm.check_stale()


def test_a_batch_that_cannot_be_written_is_kept_and_judging_pauses(db: Database) -> None:
    clock = Clock()
    talking, silent = add_amphora(db), add_amphora(db)
    hm = HealthManager(conf(), DownDatabase(), MASTER,  # type: ignore[arg-type]
                       bind=("127.0.0.1", 0), clock=clock)
    clock.now += 10
    for amp in (talking, silent):
        assert hm.receive(packet(amp, 1, clock.now), "127.0.0.1") == "accepted"
    assert hm.flush() is None
    assert set(hm.intake.batch.latest) == {talking, silent}
    # Thirty seconds of outage: one amphora keeps talking, every flush fails.
    for second in range(1, 31):
        clock.now += 1
        hm.receive(packet(talking, 1 + second, clock.now), "127.0.0.1")
        assert hm.flush() is None
        assert hm.judge_after >= clock.now + 3.0
    # The database returns: nobody is judged before the kept heartbeats are written...
    hm.db = db
    assert hm.check_stale() is None
    result = hm.flush()
    assert result is not None and result.refreshed == 2
    # ...then each is judged by when it was last heard: no mass failover.
    clock.now = hm.judge_after
    decision = hm.check_stale()
    assert decision is not None and decision.failover == (silent,)


def test_silence_is_measured_from_the_last_batch_written(db: Database) -> None:
    """A batch not yet written (a slow write on a busy host) makes nobody look silent; once
    batches are written again, an amphora that really stopped is judged."""
    clock = Clock()
    talking, silent = add_amphora(db), add_amphora(db)
    hm = HealthManager(conf(), db, MASTER, bind=("127.0.0.1", 0), clock=clock)
    for amp in (talking, silent):
        hm.receive(packet(amp, 1, clock.now), "127.0.0.1")
    assert hm.flush() is not None
    # Both talk again, but that batch is still on its way to the database...
    clock.now += 2.0
    for amp in (talking, silent):
        hm.receive(packet(amp, 2, clock.now), "127.0.0.1")
    # ...when the stale check runs, 3.5 s after the last heartbeat the database holds.
    clock.now += 1.5
    decision = hm.check_stale()
    assert decision is not None and decision.failover == () and not decision.state.open
    assert hm.flush() is not None
    # From here only one of them talks.
    clock.now += 3.5
    hm.receive(packet(talking, 3, clock.now), "127.0.0.1")
    assert hm.flush() is not None
    decision = hm.check_stale()
    assert decision is not None and decision.failover == (silent,)
