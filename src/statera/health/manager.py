"""The health manager: an asyncio UDP receiver, a batch writer and the stale-amphora check.

Datagrams are verified on arrival (intake.py) in the event loop; every
``stats_update_interval`` the batch is written in one transaction on a thread (store.py);
every ``health_check_interval`` silent amphorae are looked for and failed over, or held back
by the circuit breaker (stale.py).

Two guards keep a controller-side problem from looking like dead amphorae: nobody is judged
until a full ``heartbeat_timeout`` after the manager starts (amphorae need that long to be
heard), and a batch that could not be written (database down) is kept and merged into the
next one while judging pauses for another ``heartbeat_timeout``: when the database returns,
the heartbeats received meanwhile are written before anyone's silence is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from statera.config.settings import HealthManagerSection
from statera.db.database import Database
from statera.health import metrics
from statera.health.intake import ACCEPTED, Intake
from statera.health.stale import (
    BreakerState,
    Decision,
    decide,
    expire,
    mark_stopped,
    probe_candidates,
    resync_candidates,
    scan,
    submit_resync,
)
from statera.health.stale import submit_failover as submit
from statera.health.store import FlushResult, HealthStore, as_db_time, last_sequences
from statera.wire.heartbeat import HeartbeatDecoder

LOG = logging.getLogger(__name__)
LOG_EVERY = 60.0
# Linux: like SO_RCVBUF but past net.core.rmem_max (needs CAP_NET_ADMIN).
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, manager: HealthManager) -> None:
        self.manager = manager

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.manager.receive(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        LOG.debug("heartbeat socket error: %s", exc)


class HealthManager:
    def __init__(self, conf: HealthManagerSection, db: Database, key: bytes, *,
                 bind: tuple[str, int], wake_worker: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time,
                 unhealthy: Callable[[list[str]], list[str]] | None = None) -> None:
        self.conf = conf
        # The compute driver's direct view (netns: namespaces, agent and haproxy processes):
        # an amphora seen dead on two checks in a row is failed over without waiting for its
        # heartbeats to time out.
        self.unhealthy = unhealthy
        self._suspects: set[str] = set()
        self.store = HealthStore(db, ttl=max(5.0, 2 * conf.heartbeat_timeout))
        self.bind = bind
        self.wake_worker = wake_worker
        self.clock = clock
        self.intake = Intake(HeartbeatDecoder(conf.heartbeat_mode, key), conf.replay_window)
        self.breaker = BreakerState()
        self.judge_after = clock() + conf.heartbeat_timeout
        # Every heartbeat received before this time is in the database (the last batch taken
        # was written): while heartbeats wait to be written, silence is measured from here.
        self.written_until = clock()
        self._writing = False
        self.failovers = 0
        self.zombies = 0
        self.last_flush: FlushResult | None = None
        self.heartbeats_written = 0
        self._exported: dict[str, int] = {}
        self._logged: dict[str, float] = {}
        self.bound: tuple[str, int] | None = None

    @property
    def db(self) -> Database:
        return self.store.db

    @db.setter
    def db(self, db: Database) -> None:
        self.store.db = db

    # ---- receiving -------------------------------------------------------------------------

    def receive(self, data: bytes, source: str) -> str:
        result = self.intake.receive(data, source, self.clock())
        if result != ACCEPTED:
            self._log_once(f"reject:{source}:{result}", logging.WARNING,
                           "heartbeat from %s dropped: %s", source, result)
        return result

    def _log_once(self, key: str, level: int, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY) >= LOG_EVERY:
            self._logged[key] = now
            if len(self._logged) > 10_000:
                self._logged.clear()
            LOG.log(level, msg, *args)

    # ---- writing ---------------------------------------------------------------------------

    def _export_counts(self) -> None:
        """Counters by result into Prometheus, once per batch rather than per datagram."""
        for result, count in self.intake.counts.items():
            seen = self._exported.get(result, 0)
            if count > seen:
                metrics.HEARTBEATS.labels(result).inc(count - seen)
                self._exported[result] = count

    def _after_flush(self, result: FlushResult) -> None:
        self._export_counts()
        self.last_flush = result
        self.heartbeats_written += result.heartbeats
        self.intake.expected_source.update(result.sources)
        for amp_id in result.zombies:
            self.zombies += 1
            metrics.ZOMBIES.inc()
            if self.intake.guard is not None:
                self.intake.guard.forget(amp_id)
            self._log_once(f"zombie:{amp_id}", logging.WARNING,
                           "heartbeats from amphora %s, which is unknown or deleted: ignored "
                           "(if it still runs, remove it by hand)", amp_id)
        for amp_id in result.wrong_source:
            self._log_once(f"source:{amp_id}", logging.WARNING,
                           "heartbeats for amphora %s from an address other than its "
                           "management address: ignored", amp_id)
        for amp_id in result.listener_mismatch:
            self._log_once(f"count:{amp_id}", logging.WARNING,
                           "amphora %s reports a different number of listeners than its load "
                           "balancer has: its health is not refreshed", amp_id)
        for amp_id in result.recovered:
            LOG.info("amphora %s is heard again: back to ALLOCATED", amp_id)

    def _flush_failed(self, exc: BaseException) -> None:
        self._export_counts()
        self.judge_after = max(self.judge_after, self.clock() + self.conf.heartbeat_timeout)
        self._log_once("flush", logging.ERROR, "heartbeats not written (kept for the next "
                       "batch; failovers paused): %s", exc)

    def flush(self) -> FlushResult | None:
        """Write the current batch now (tests, and the last batch on stop)."""
        taken_at = self.clock()
        batch = self.intake.take()
        if not batch:
            self.written_until = taken_at
            return None
        try:
            result = self.store.write(batch)
        except Exception as exc:
            self.intake.put_back(batch)
            self._flush_failed(exc)
            return None
        self.written_until = taken_at
        self._after_flush(result)
        return result

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            taken_at = self.clock()
            batch = self.intake.take()
            if batch:
                started = time.monotonic()
                self._writing = True
                try:
                    result = await asyncio.to_thread(self.store.write, batch)
                except Exception as exc:
                    self.intake.put_back(batch)
                    self._flush_failed(exc)
                else:
                    metrics.BATCH_SECONDS.observe(time.monotonic() - started)
                    self.written_until = taken_at
                    self._after_flush(result)
                finally:
                    self._writing = False
            else:
                self.written_until = taken_at
                self._export_counts()
            await _wait(stop, self.conf.stats_update_interval)

    # ---- judging ---------------------------------------------------------------------------

    def check_stale(self) -> Decision | None:
        """One look for silent amphorae; None while judging is paused."""
        now = self.clock()
        # Judge by what the database knows: heartbeats still waiting for (or in) a batch
        # write — seconds, on a host busy with hundreds of amphorae and creates — must not
        # make their amphorae look silent. bench.density, 200 creates with batch writes
        # taking up to 2.5 s, saw two amphorae failed over and then the breaker open with
        # 108 of 145 "silent". With nothing waiting, the database is current.
        pending = self._writing or bool(self.intake.batch)
        as_of = min(now, self.written_until) if pending else now
        cutoff = as_db_time(as_of - self.conf.heartbeat_timeout)
        if self.unhealthy is not None:
            # Direct evidence needs no start-up grace (unlike silence, which may only mean
            # this health manager just started): fail the dead over now.
            dead = self._probe(cutoff)
            if dead and not self.breaker.open:
                self._start_failovers(dead, cutoff, "its instance is gone or its agent or "
                                      "haproxy died")
        if now < self.judge_after:
            return None
        found = scan(self.db, cutoff)
        metrics.STALE.set(len(found.stale))
        decision = decide(found.stale, found.monitored, self.conf.failover_threshold,
                          self.breaker, now, self.conf.heartbeat_timeout)
        self.breaker = decision.state
        metrics.CIRCUIT_OPEN.set(1 if decision.state.open else 0)
        if decision.opened:
            LOG.error("failover circuit breaker open: %d of %d monitored amphorae are silent "
                      "(threshold %d); no automatic failover until they are heard again or "
                      "an operator fails them over", len(found.stale), found.monitored,
                      self.conf.failover_threshold)
        if decision.closed:
            LOG.warning("failover circuit breaker closed: amphorae still silent are failed "
                        "over now")
        if decision.stop:
            mark_stopped(self.db, decision.stop)
        self._start_failovers(decision.failover, cutoff,
                              f"silent for more than {self.conf.heartbeat_timeout:.1f} s")
        self._start_resyncs(cutoff)
        return decision

    def _start_resyncs(self, cutoff: datetime) -> None:
        started = 0
        for amp_id in resync_candidates(self.db, cutoff):
            if submit_resync(self.db, amp_id):
                started += 1
                LOG.warning("amphora %s is heard again after missing a config push while "
                            "failover was stopped: pushing its load balancer's config", amp_id)
        if started:
            self.wake_worker()

    def _start_failovers(self, amphora_ids: Sequence[str], cutoff: datetime, why: str) -> None:
        started = 0
        for amp_id in amphora_ids:
            if submit(self.db, amp_id, cutoff):
                started += 1
                LOG.warning("amphora %s %s: failing it over", amp_id, why)
        if started:
            self.failovers += started
            metrics.FAILOVERS.inc(started)
            self.wake_worker()

    def _probe(self, cutoff: datetime) -> list[str]:
        """Amphorae the compute driver saw dead on two checks in a row, now marked silent."""
        assert self.unhealthy is not None
        candidates = probe_candidates(self.db, cutoff)
        dead = {candidates[c] for c in self.unhealthy(list(candidates)) if c in candidates}
        confirmed = sorted(dead & self._suspects)
        self._suspects = dead - set(confirmed)
        if not confirmed or not expire(self.db, confirmed, cutoff):
            return []
        return confirmed

    async def _stale_loop(self, stop: asyncio.Event) -> None:
        # The first look comes one interval after the start, like every later one (nothing
        # can be judged at once anyway: silence waits out heartbeat_timeout, a direct probe
        # wants two looks).
        while not await _wait(stop, self.conf.health_check_interval):
            try:
                await asyncio.to_thread(self.check_stale)
            except Exception as exc:
                self._log_once("stale", logging.ERROR, "stale amphora check failed: %s", exc)

    # ---- running ---------------------------------------------------------------------------

    def _seed_replay_guard(self) -> None:
        """Start from the sequence numbers already written, so a heartbeat captured before a
        restart cannot be replayed after it. (Between several health managers the guard is
        per process: a heartbeat sent to one can be replayed once to another, within
        replay_window.)"""
        if self.intake.guard is None:
            return
        try:
            self.intake.guard.seed(last_sequences(self.db))
        except Exception as exc:  # the database may be down at start: the window still holds
            LOG.warning("replay guard starts empty: could not read the last sequence "
                        "numbers: %s", exc)

    async def serve(self, stop: asyncio.Event,
                    on_bound: Callable[[tuple[str, int]], None] | None = None) -> None:
        self._seed_replay_guard()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.bind)
        sock = transport.get_extra_info("socket")
        if self.conf.sock_rlimit and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.conf.sock_rlimit)
            except OSError:  # not root: the kernel caps it at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.conf.sock_rlimit)
        self.bound = sock.getsockname()[:2] if sock is not None else self.bind
        LOG.info("health manager receiving heartbeats on %s:%d (%s keys)", self.bound[0],
                 self.bound[1], self.conf.heartbeat_mode)
        if on_bound is not None:
            on_bound(self.bound)
        tasks = [asyncio.create_task(self._flush_loop(stop)),
                 asyncio.create_task(self._stale_loop(stop))]
        try:
            await stop.wait()
        finally:
            transport.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self.flush)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class HealthManagerThread:
    """Runs a HealthManager on its own event loop in a daemon thread (``statera up``)."""

    def __init__(self, manager: HealthManager) -> None:
        self.manager = manager
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="health-manager", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.manager.serve(self._stop, on_bound=lambda _addr: self._ready.set())

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
            LOG.error("health manager stopped: %s", exc)
        finally:
            self._ready.set()

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until the socket is bound; raise what stopped it otherwise."""
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop finished in between
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
