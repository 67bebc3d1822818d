"""The worker process's loop: claim operations, run their flows, renew their leases.

Claiming is one compare-and-set UPDATE (owner, lease, claim count), correct on SQLite,
MariaDB and PostgreSQL alike. An operation is only claimed once every earlier unfinished
operation of the same load balancer is done, so a tree's changes apply in order.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from statera import metrics
from statera.db import models as m
from statera.db.types import utcnow
from statera.domain.errors import LeaseLost
from statera.drivers import Drivers
from statera.services.deps import Deps
from statera.worker.engine import Claim, Engine, Fence, Stopping
from statera.worker.flows import flow_for

LOG = logging.getLogger(__name__)
OPEN_STATES = ("PENDING", "RUNNING")


class Worker:
    def __init__(self, deps: Deps, drivers: Drivers, *, name: str | None = None) -> None:
        self.deps = deps
        self.drivers = drivers
        host = deps.settings.default.host
        self.name = name or f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = deps.settings.task_flow.jobboard_expiration_time
        self.max_running = deps.settings.controller_worker.workers
        self.poll_interval = deps.settings.controller_worker.poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._handover = threading.Event()
        self._renewer_stop = threading.Event()
        self._running: dict[str, Future[Any]] = {}
        self._fences: dict[str, Fence] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []

    # ---- claiming ------------------------------------------------------------------------

    def _candidates(self, limit: int) -> list[tuple[str, int]]:
        now = utcnow()
        earlier = aliased(m.Operation)
        blocked = sa.exists().where(
            earlier.load_balancer_id == m.Operation.load_balancer_id,
            earlier.state.in_(OPEN_STATES),
            sa.or_(earlier.created_at < m.Operation.created_at,
                   sa.and_(earlier.created_at == m.Operation.created_at,
                           earlier.id < m.Operation.id)))
        stmt = (sa.select(m.Operation.id, m.Operation.claim_count)
                .where(m.Operation.state.in_(OPEN_STATES),
                       sa.or_(m.Operation.owner.is_(None), m.Operation.lease_expires_at < now),
                       sa.or_(m.Operation.load_balancer_id.is_(None), ~blocked))
                .order_by(m.Operation.created_at, m.Operation.id).limit(limit))
        with self.deps.db.read() as session:
            return [(r[0], r[1]) for r in session.execute(stmt)]

    def _claim(self, op_id: str, seen_count: int) -> Claim | None:
        now = utcnow()
        with self.deps.db.write() as session:
            result = session.execute(
                sa.update(m.Operation)
                .where(m.Operation.id == op_id, m.Operation.claim_count == seen_count,
                       m.Operation.state.in_(OPEN_STATES),
                       sa.or_(m.Operation.owner.is_(None), m.Operation.lease_expires_at < now))
                .values(owner=self.name, claim_count=seen_count + 1, state="RUNNING",
                        lease_expires_at=now + timedelta(seconds=self.lease),
                        attempts=m.Operation.attempts + 1)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
        return Claim(op_id, self.name, seen_count + 1, self.lease)

    def claim_next(self, limit: int = 1) -> list[Claim]:
        claims: list[Claim] = []
        for op_id, count in self._candidates(limit * 3):
            if len(claims) >= limit:
                break
            with self._lock:
                if op_id in self._running:
                    continue
            claim = self._claim(op_id, count)
            if claim is not None:
                claims.append(claim)
        return claims

    # ---- running ---------------------------------------------------------------------------

    def run_claimed(self, claim: Claim) -> str | None:
        """Run one claimed operation; returns its final state, or None if handed over."""
        fence = Fence(self.deps, claim)
        with self._lock:
            self._fences[claim.operation_id] = fence
        try:
            with self.deps.db.read() as session:
                op = session.get(m.Operation, claim.operation_id)
                if op is None:
                    return None
                kind, payload, progress = op.kind, dict(op.payload), op.progress
                try:
                    flow, initial = flow_for(op)
                except LookupError as exc:
                    LOG.error("%s", exc)
                    flow, initial = None, {}
            if flow is None:
                with self.deps.db.write() as session:
                    fence.save(session, state="FAILED", error=f"unknown operation kind {kind}",
                               owner=None, lease_expires_at=None, finished_at=utcnow())
                return "FAILED"
            engine = Engine(self.deps, self.drivers, should_stop=self._handover.is_set)
            started = time.monotonic()
            state = engine.run(flow, fence, payload, progress, initial)
            elapsed = time.monotonic() - started
            LOG.info("operation %s (%s) %s in %.3fs", claim.operation_id, kind, state, elapsed)
            metrics.record_operation(kind, state, elapsed)
            return state
        except LeaseLost:
            LOG.warning("lost the lease of operation %s; another worker has it",
                        claim.operation_id)
            return None
        except Stopping:
            self._release(claim)
            LOG.info("handed operation %s over for another worker to resume",
                     claim.operation_id)
            return None
        finally:
            with self._lock:
                self._fences.pop(claim.operation_id, None)

    def _release(self, claim: Claim) -> None:
        """Give the operation up now so the next worker can resume it without waiting."""
        try:
            with self.deps.db.write() as session:
                session.execute(sa.update(m.Operation).where(
                    m.Operation.id == claim.operation_id, m.Operation.owner == claim.owner,
                    m.Operation.claim_count == claim.claim_count)
                    .values(owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False))
        except Exception as exc:
            LOG.warning("could not release %s (its lease will run out): %s",
                        claim.operation_id, exc)

    def run_until_idle(self, timeout: float = 60.0) -> None:
        """Run every claimable operation in this thread until none is left (for tests and
        one-shot runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            claims = self.claim_next(limit=1)
            if not claims:
                return
            self.run_claimed(claims[0])
        raise TimeoutError("operations still pending after run_until_idle timeout")

    # ---- the service loop ------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Run the claim loop and the lease renewer in background threads."""
        self._pool = ThreadPoolExecutor(max_workers=self.max_running,
                                        thread_name_prefix="statera-flow")
        for target, name in ((self._loop, "statera-worker"), (self._renew_loop, "statera-lease")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        LOG.info("worker %s started (%d at once, lease %.0fs)", self.name, self.max_running,
                 self.lease)

    def _loop(self) -> None:
        assert self._pool is not None
        while not self._stop.is_set():
            try:
                with self._lock:
                    free = self.max_running - len(self._running)
                if free > 0:
                    for claim in self.claim_next(limit=free):
                        future = self._pool.submit(self.run_claimed, claim)
                        with self._lock:
                            self._running[claim.operation_id] = future
                        future.add_done_callback(self._done_callback(claim.operation_id))
            except Exception as exc:
                LOG.warning("worker loop: %s", exc)
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _done_callback(self, op_id: str) -> Any:
        return lambda _future: self._done(op_id)

    def _done(self, op_id: str) -> None:
        with self._lock:
            self._running.pop(op_id, None)
        self._wake.set()

    def _renew_loop(self) -> None:
        while not self._renewer_stop.wait(max(self.lease / 3, 0.05)):
            with self._lock:
                fences = list(self._fences.values())
            for fence in fences:
                fence.renew()

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def stop(self, graceful_timeout: float | None = None) -> None:
        """Stop claiming; let running flows finish for up to ``graceful_timeout`` seconds,
        then hand the rest over at their next step boundary."""
        if graceful_timeout is None:
            graceful_timeout = self.deps.settings.controller_worker.graceful_shutdown_timeout
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + graceful_timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            self._handover.set()
            while self.running() and time.monotonic() < deadline + 30:
                time.sleep(0.05)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._renewer_stop.set()
        for t in self._threads:
            t.join(timeout=2)
        LOG.info("worker %s stopped", self.name)
