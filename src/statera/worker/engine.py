"""The flow engine: ordered, named, idempotent steps with reverts and persisted progress.

A flow's state is a small dataclass (its *context*), saved as JSON in the operation row after
every step together with the names of the steps done. A worker that resumes an operation
rebuilds the context and carries on from the first step not done; if it died while reverting
it carries on reverting. Every save is fenced by the claim (owner and claim count): a worker
that lost its lease cannot write progress any more, and stops.

Two kinds of steps:
* ``DbStep`` changes only the database. It runs inside the same transaction that records its
  completion, so it happens exactly once.
* ``ActionStep`` acts on the outside world through a driver (compute, network, amphora). It
  runs outside any transaction and must be idempotent: a worker that dies after the action
  but before saving progress will run it again on resume.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.types import utcnow
from statera.domain.errors import LeaseLost, ServiceUnavailable, StepFailed, TemporaryFailure
from statera.drivers import Drivers
from statera.services.deps import Deps

LOG = logging.getLogger(__name__)
C = TypeVar("C")


@dataclass
class Env:
    """What a step may use: settings and database (through deps) and the drivers."""

    deps: Deps
    drivers: Drivers
    operation_id: str
    payload: dict[str, Any]


class Step(Generic[C]):
    name: str = ""

    def __init__(self) -> None:
        if not self.name:
            self.name = type(self).__name__


class DbStep(Step[C], abc.ABC):
    @abc.abstractmethod
    def execute(self, env: Env, session: Session, ctx: C) -> None:
        """Change the database in ``session``; committed together with the progress."""

    def revert(self, env: Env, session: Session, ctx: C) -> None:
        """Undo ``execute``; idempotent. Default: nothing to undo."""


class ActionStep(Step[C], abc.ABC):
    @abc.abstractmethod
    def execute(self, env: Env, ctx: C) -> None:
        """Act through a driver; must be idempotent."""

    def revert(self, env: Env, ctx: C) -> None:
        """Undo ``execute``; idempotent, never raises. Default: nothing to undo."""


@dataclass
class Flow(Generic[C]):
    name: str
    context_type: type[C]
    steps: list[Step[C]]

    def new_context(self, **values: Any) -> C:
        return self.context_type(**values)


@dataclass
class Claim:
    """This worker's hold on an operation: every save checks it is still ours."""

    operation_id: str
    owner: str
    claim_count: int
    lease_seconds: float


class Fence:
    """Saves progress and renews the lease, refusing once the claim is lost."""

    def __init__(self, deps: Deps, claim: Claim, clock: Callable[[], Any] = utcnow) -> None:
        self.deps = deps
        self.claim = claim
        self.clock = clock
        self.lost = threading.Event()
        self.last_saved = 0.0  # time.monotonic() of the last successful save

    def _where(self) -> Any:
        c = self.claim
        return sa.and_(m.Operation.id == c.operation_id, m.Operation.owner == c.owner,
                       m.Operation.claim_count == c.claim_count)

    def save(self, session: Session, **values: Any) -> None:
        from datetime import timedelta

        values.setdefault("lease_expires_at",
                          self.clock() + timedelta(seconds=self.claim.lease_seconds))
        result = session.execute(sa.update(m.Operation).where(self._where()).values(**values)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self.lost.set()
            raise LeaseLost(f"operation {self.claim.operation_id} is no longer ours")
        self.last_saved = time.monotonic()

    def renew(self) -> bool:
        try:
            with self.deps.db.write() as session:
                self.save(session)
            return True
        except LeaseLost:
            return False
        except Exception as exc:  # the DB may be briefly away; try again next time
            LOG.warning("could not renew the lease of %s: %s", self.claim.operation_id, exc)
            return True


class Stopping(Exception):
    """Raised at a step boundary when the worker is shutting down and must hand over."""


def _is_temporary(exc: BaseException) -> bool:
    return isinstance(exc, (TemporaryFailure, ServiceUnavailable, sa_exc.OperationalError))


class Engine:
    """Runs one claimed operation's flow to its end, or until the claim is lost."""

    def __init__(self, deps: Deps, drivers: Drivers, *,
                 should_stop: Callable[[], bool] = lambda: False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.deps = deps
        self.drivers = drivers
        self.should_stop = should_stop
        self.sleep = sleep
        cw = deps.settings.controller_worker
        self.max_retries = cw.step_max_retries
        self.max_delay = cw.step_retry_max_delay
        self._flow_name = ""

    def run(self, flow: Flow[Any], fence: Fence, payload: dict[str, Any],
            progress: dict[str, Any] | None, initial: dict[str, Any]) -> str:
        """Returns the final state: SUCCEEDED or FAILED. Raises LeaseLost or Stopping."""
        self._flow_name = flow.name
        progress = dict(progress or {})
        done: list[str] = list(progress.get("done", []))
        phase = progress.get("phase", "execute")
        ctx_data = progress.get("context") or initial
        ctx = flow.context_type(**ctx_data)
        env = Env(self.deps, self.drivers, fence.claim.operation_id, payload)
        error = progress.get("error")
        if phase == "execute":
            for step in flow.steps:
                if step.name in done:
                    continue
                if self.should_stop():
                    raise Stopping()
                failure = self._execute_with_retries(step, env, fence, ctx, done)
                if failure is not None:
                    error = f"{step.name}: {failure}"
                    LOG.warning("operation %s (%s) failed at %s: %s; reverting",
                                fence.claim.operation_id, flow.name, step.name, failure)
                    done.append(step.name)  # the failed step is reverted too
                    phase = "revert"
                    self._save_progress(fence, ctx, done, phase, error, step.name)
                    break
            else:
                self._finish(fence, "SUCCEEDED", None)
                return "SUCCEEDED"
        # Revert every step that ran, newest first; progress shrinks as we go.
        for step in reversed([s for s in flow.steps if s.name in done]):
            self._revert(step, env, ctx)
            done.remove(step.name)
            self._save_progress(fence, ctx, done, "revert", error, step.name)
        self._finish(fence, "FAILED", error)
        return "FAILED"

    def _execute_with_retries(self, step: Step[Any], env: Env, fence: Fence, ctx: Any,
                              done: list[str]) -> str | None:
        attempt = 0
        while True:
            try:
                self._execute(step, env, fence, ctx, done)
                return None
            except (LeaseLost, Stopping):
                raise
            except StepFailed as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    return exc.text
                delay = min(getattr(exc, "delay", 1.0) * (2**attempt), self.max_delay)
            except Exception as exc:
                if not _is_temporary(exc):
                    LOG.exception("step %s failed", step.name)
                    return f"{type(exc).__name__}: {exc}"
                # The database is away: keep trying for a long while, as upstream does.
                if attempt >= max(self.max_retries, 600):
                    return f"{type(exc).__name__}: {exc}"
                delay = min(0.5 * (2**min(attempt, 10)), 5.0)
            attempt += 1
            LOG.info("step %s will be tried again in %.1fs (attempt %d)", step.name, delay,
                     attempt + 1)
            self._sleep_renewing(fence, delay)

    def _sleep_renewing(self, fence: Fence, delay: float) -> None:
        end = time.monotonic() + delay
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.sleep(min(left, fence.claim.lease_seconds / 3))
            if not fence.renew():
                raise LeaseLost(f"operation {fence.claim.operation_id} is no longer ours")
            if self.should_stop():
                raise Stopping()

    def _execute(self, step: Step[Any], env: Env, fence: Fence, ctx: Any,
                 done: list[str]) -> None:
        if isinstance(step, DbStep):
            with self.deps.db.write() as session:
                step.execute(env, session, ctx)
                self._save_in(session, fence, ctx, [*done, step.name], "execute", None,
                              step.name)
        else:
            assert isinstance(step, ActionStep)
            # Act only while the claim is surely ours: the save that ended the previous step
            # proves it if it was recent; otherwise prove it again now.
            if time.monotonic() - fence.last_saved > fence.claim.lease_seconds / 3:
                self._save_progress(fence, ctx, done, "execute", None, step.name)
            step.execute(env, ctx)
            self._save_progress(fence, ctx, [*done, step.name], "execute", None, step.name)
        done.append(step.name)
        _fault_point(f"{self._flow_name}:{step.name}")

    def _revert(self, step: Step[Any], env: Env, ctx: Any) -> None:
        for attempt in range(5):
            try:
                if isinstance(step, DbStep):
                    with self.deps.db.write() as session:
                        step.revert(env, session, ctx)
                else:
                    assert isinstance(step, ActionStep)
                    step.revert(env, ctx)
                return
            except Exception as exc:  # reverts must not stop the other reverts
                LOG.warning("revert of %s failed (attempt %d): %s", step.name, attempt + 1, exc)
                self.sleep(min(0.2 * (2**attempt), 2.0))

    def _save_in(self, session: Session, fence: Fence, ctx: Any, done: list[str], phase: str,
                 error: str | None, current: str) -> None:
        fence.save(session, progress={"done": done, "phase": phase,
                                      "context": dataclasses.asdict(ctx), "error": error},
                   current_step=current)

    def _save_progress(self, fence: Fence, ctx: Any, done: list[str], phase: str,
                       error: str | None, current: str) -> None:
        for attempt in range(600):
            try:
                with self.deps.db.write() as session:
                    self._save_in(session, fence, ctx, done, phase, error, current)
                return
            except LeaseLost:
                raise
            except Exception as exc:
                if not _is_temporary(exc):
                    raise
                LOG.warning("could not save progress (attempt %d): %s", attempt + 1, exc)
                self.sleep(min(0.5 * (2**min(attempt, 10)), 5.0))
        raise ServiceUnavailable("could not save progress")

    def _finish(self, fence: Fence, state: str, error: str | None) -> None:
        for attempt in range(600):
            try:
                with self.deps.db.write() as session:
                    fence.save(session, state=state, error=error, finished_at=fence.clock(),
                               owner=None, lease_expires_at=None)
                return
            except LeaseLost:
                raise
            except Exception as exc:
                if not _is_temporary(exc):
                    raise
                self.sleep(min(0.5 * (2**min(attempt, 10)), 5.0))


def _fault_point(where: str) -> None:
    """Crash tests (CP-2): with STATERA_FAULT_EXIT_AFTER="<flow>:<step>" in its environment,
    the process dies abruptly, as under kill -9, right after that step's progress is saved.
    Never set outside tests."""
    if os.environ.get("STATERA_FAULT_EXIT_AFTER") == where:
        LOG.error("fault injection: exiting after %s", where)
        os._exit(137)
