"""Claiming operations: each is claimed by exactly one worker, on every backend, and one
load balancer's operations run in the order they were accepted."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.db.types import utcnow
from statera.drivers import load_drivers
from statera.services.common import new_id
from statera.services.deps import Deps
from statera.worker.runner import Worker
from tests.conftest import make_settings


def _deps(tmp_path: Path, url: str) -> Deps:
    settings = make_settings(tmp_path, url)
    upgrade(url)
    return Deps(settings=settings, db=Database(url))


def _add_ops(deps: Deps, count: int, lb_of: callable = lambda i: None) -> list[str]:  # type: ignore[valid-type]
    ids = []
    base = utcnow()
    with deps.db.write() as s:
        for i in range(count):
            op = m.Operation(id=new_id(), kind="update_amphora_config", payload={},
                             state="PENDING", claim_count=0, attempts=0,
                             load_balancer_id=lb_of(i),  # type: ignore[misc]
                             created_at=base + timedelta(microseconds=i))
            s.add(op)
            ids.append(op.id)
    return ids


def test_each_operation_is_claimed_once(tmp_path: Path, db_url: str) -> None:
    deps = _deps(tmp_path, db_url)
    ids = _add_ops(deps, 40)
    drivers = load_drivers(deps.settings)
    workers = [Worker(deps, drivers, name=f"w{i}") for i in range(4)]
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def grab(w: Worker) -> None:
        while True:
            claims = w.claim_next(limit=3)
            if not claims:
                return
            with lock:
                claimed.extend((c.operation_id, w.name) for c in claims)

    threads = [threading.Thread(target=grab, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(op for op, _ in claimed) == sorted(ids)
    with deps.db.read() as s:
        owners = dict(s.execute(sa.select(m.Operation.id, m.Operation.owner)).all())
    assert all(owners[op] == who for op, who in claimed)
    deps.db.dispose()


def test_one_load_balancer_runs_in_order(tmp_path: Path, db_url: str) -> None:
    deps = _deps(tmp_path, db_url)
    first, second, other = _add_ops(deps, 3, lambda i: "lb-a" if i < 2 else "lb-b")
    worker = Worker(deps, load_drivers(deps.settings), name="w")
    claims = worker.claim_next(limit=5)
    assert sorted(c.operation_id for c in claims) == sorted([first, other])
    with deps.db.write() as s:
        s.execute(sa.update(m.Operation).where(m.Operation.id == first)
                  .values(state="SUCCEEDED", owner=None))
    assert [c.operation_id for c in worker.claim_next(limit=5)] == [second]
    deps.db.dispose()


def test_an_expired_lease_is_taken_over(tmp_path: Path, db_url: str) -> None:
    deps = _deps(tmp_path, db_url)
    _add_ops(deps, 1)
    drivers = load_drivers(deps.settings)
    a, b = Worker(deps, drivers, name="a"), Worker(deps, drivers, name="b")
    claim_a = a.claim_next()[0]
    assert b.claim_next() == []
    with deps.db.write() as s:
        s.execute(sa.update(m.Operation).values(lease_expires_at=utcnow() - timedelta(1)))
    claim_b = b.claim_next()[0]
    assert claim_b.claim_count == claim_a.claim_count + 1
    # The first worker can no longer save anything about it.
    from statera.domain.errors import LeaseLost
    from statera.worker.engine import Fence

    fence = Fence(deps, claim_a)
    try:
        with deps.db.write() as s:
            fence.save(s, current_step="late")
        raise AssertionError("a stale claim saved progress")
    except LeaseLost:
        pass
    assert b.run_claimed(claim_b) == "SUCCEEDED"
    deps.db.dispose()
