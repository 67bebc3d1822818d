"""Silent amphorae: which to fail over, and the circuit breaker that stops a storm.

``decide`` is pure. The breaker opens when ``failover_threshold`` amphorae are silent at once,
or when every monitored amphora (two or more) is: then the controller's own network is the
likelier culprit, and rebuilding everything would make things worse. While open, nothing is
failed over and the silent amphorae go FAILOVER_STOPPED (heartbeats bring them back to
ALLOCATED). It closes only after the count has stayed below the threshold for a whole
``hold`` (heartbeat_timeout): amphorae heard again right after a partition heals get time to
report before anyone still silent is judged dead.

An amphora that a config push skipped while it was FAILOVER_STOPPED (``config_stale``) gets
an ``update_load_balancer`` operation once it is heard again (``submit_resync``), so it never
serves an old haproxy.cfg after the breaker lets go.

``scan``, ``submit_failover`` and ``submit_resync`` are the database side. A failover is an ordinary
``failover_amphora`` operation, written in the same transaction as the amphora's ``busy``
mark and its load balancer's PENDING_UPDATE, exactly as the API's failover would; a load
balancer that is not ACTIVE or ERROR belongs to another operation and is left for a later
round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.database import Database
from statera.domain.enums import DELETABLE_STATUSES
from statera.domain.enums import AmphoraStatus as A
from statera.domain.enums import ProvisioningStatus as P
from statera.services import common

LOG = logging.getLogger(__name__)
MONITORED = (A.ALLOCATED, A.FAILOVER_STOPPED)


@dataclass(frozen=True)
class StaleAmphora:
    amphora_id: str
    status: str
    load_balancer_id: str | None
    last_update: datetime


@dataclass(frozen=True)
class BreakerState:
    open: bool = False
    below_since: float | None = None


@dataclass(frozen=True)
class Decision:
    failover: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    """ALLOCATED amphorae to mark FAILOVER_STOPPED."""
    state: BreakerState = BreakerState()
    opened: bool = False
    closed: bool = False


def trips(stale: int, monitored: int, threshold: int) -> bool:
    if threshold <= 0:
        return False
    return stale >= threshold or (stale >= 2 and stale >= monitored)


def decide(stale: Sequence[StaleAmphora], monitored: int, threshold: int,
           state: BreakerState, now: float, hold: float) -> Decision:
    """What to do with the silent amphorae found by one scan."""
    stopped = tuple(a.amphora_id for a in stale if a.status == A.ALLOCATED)
    if trips(len(stale), monitored, threshold):
        return Decision(stop=stopped, state=BreakerState(open=True),
                        opened=not state.open)
    if state.open:
        below_since = state.below_since if state.below_since is not None else now
        if now - below_since < hold:
            return Decision(stop=stopped, state=replace(state, below_since=below_since))
        return Decision(failover=tuple(a.amphora_id for a in stale), state=BreakerState(),
                        closed=True)
    return Decision(failover=tuple(a.amphora_id for a in stale), state=state)


# ---- database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    stale: list[StaleAmphora]
    monitored: int


def scan(db: Database, cutoff: datetime) -> Scan:
    """Monitored amphorae silent since before ``cutoff``, and how many are monitored."""
    H, Amp = m.AmphoraHealth, m.Amphora
    with db.read() as session:
        monitored = session.execute(
            sa.select(sa.func.count()).select_from(H).join(Amp, Amp.id == H.amphora_id)
            .where(Amp.status.in_(MONITORED))).scalar_one()
        rows = session.execute(
            sa.select(H.amphora_id, Amp.status, Amp.load_balancer_id, H.last_update)
            .join(Amp, Amp.id == H.amphora_id)
            .where(Amp.status.in_(MONITORED), H.busy.is_(False), H.last_update < cutoff)
            .order_by(H.last_update)).all()
    return Scan([StaleAmphora(r.amphora_id, r.status, r.load_balancer_id, r.last_update)
                 for r in rows], int(monitored))


def mark_stopped(db: Database, amphora_ids: Sequence[str]) -> int:
    if not amphora_ids:
        return 0

    def work(session: Session) -> int:
        res = session.execute(sa.update(m.Amphora).where(
            m.Amphora.id.in_(list(amphora_ids)), m.Amphora.status == A.ALLOCATED)
            .values(status=A.FAILOVER_STOPPED).execution_options(synchronize_session=False))
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    count: int = db.write_retrying(work)
    return count


class _LeaveIt(Exception):
    """Roll the transaction back: someone else owns this load balancer right now."""


def _written(db: Database, work: Callable[[Session], bool]) -> bool:
    """Run ``work`` in a write transaction; False when it left the load balancer alone."""
    try:
        done: bool = db.write_retrying(work)
        return done
    except _LeaveIt:
        return False


def submit_failover(db: Database, amphora_id: str, cutoff: datetime) -> bool:
    """Fail one silent amphora over, unless it spoke since, is already being handled, or
    its load balancer is busy. True when an operation was written."""

    def work(session: Session) -> bool:
        marked = session.execute(
            sa.update(m.AmphoraHealth)
            .where(m.AmphoraHealth.amphora_id == amphora_id,
                   m.AmphoraHealth.busy.is_(False), m.AmphoraHealth.last_update < cutoff)
            .values(busy=True).execution_options(synchronize_session=False))
        if not marked.rowcount:  # type: ignore[attr-defined]
            return False
        amp = session.get(m.Amphora, amphora_id)
        if amp is None or amp.status not in MONITORED:
            raise _LeaveIt
        project_id = None
        if amp.load_balancer_id is not None:
            LB = m.LoadBalancer
            lb = session.execute(sa.select(LB.provisioning_status, LB.project_id)
                                 .where(LB.id == amp.load_balancer_id)
                                 .with_for_update()).one_or_none()
            if lb is None or lb.provisioning_status not in DELETABLE_STATUSES:
                raise _LeaveIt
            session.execute(sa.update(LB).where(LB.id == amp.load_balancer_id)
                            .values(provisioning_status=P.PENDING_UPDATE)
                            .execution_options(synchronize_session=False))
            project_id = lb.project_id
        common.enqueue(session, "failover_amphora", load_balancer_id=amp.load_balancer_id,
                       target_type="amphora", target_id=amp.id, project_id=project_id,
                       payload={"reason": "heartbeat_timeout"},
                       request_id="health-manager")
        return True

    return _written(db, work)


def resync_candidates(db: Database, cutoff: datetime) -> list[str]:
    """Amphorae heard since ``cutoff``, back to ALLOCATED, that a config push skipped."""
    H, Amp, LB = m.AmphoraHealth, m.Amphora, m.LoadBalancer
    with db.read() as session:
        return list(session.scalars(
            sa.select(Amp.id).join(H, H.amphora_id == Amp.id)
            .join(LB, LB.id == Amp.load_balancer_id)
            .where(Amp.config_stale.is_(True), Amp.status == A.ALLOCATED,
                   H.busy.is_(False), H.last_update >= cutoff,
                   LB.provisioning_status == P.ACTIVE)
            .order_by(Amp.id)))


def submit_resync(db: Database, amphora_id: str) -> bool:
    """Push the load balancer's config again for an amphora that missed a push. Only an
    ACTIVE load balancer is taken (PENDING_UPDATE, as the API would): one busy with another
    operation is left for a later round, and that operation's push reaches the amphora
    anyway. True when an operation was written."""

    def work(session: Session) -> bool:
        amp = session.get(m.Amphora, amphora_id)
        if (amp is None or not amp.config_stale or amp.status != A.ALLOCATED
                or amp.load_balancer_id is None):
            raise _LeaveIt
        LB = m.LoadBalancer
        taken = session.execute(
            sa.update(LB).where(LB.id == amp.load_balancer_id,
                                LB.provisioning_status == P.ACTIVE)
            .values(provisioning_status=P.PENDING_UPDATE)
            .execution_options(synchronize_session=False))
        if not taken.rowcount:  # type: ignore[attr-defined]
            raise _LeaveIt
        project_id = session.scalar(sa.select(LB.project_id).where(
            LB.id == amp.load_balancer_id))
        common.enqueue(session, "update_load_balancer", load_balancer_id=amp.load_balancer_id,
                       target_type="loadbalancer", target_id=amp.load_balancer_id,
                       project_id=project_id,
                       payload={"reason": "config_stale", "amphora_id": amphora_id},
                       request_id="health-manager")
        return True

    return _written(db, work)


def probe_candidates(db: Database, cutoff: datetime) -> dict[str, str]:
    """Allocated amphorae not yet stale nor busy — including those not heard from at all
    yet (one that dies before its first heartbeat has no health row to go stale):
    compute id -> amphora id."""
    H, Amp = m.AmphoraHealth, m.Amphora
    with db.read() as session:
        rows = session.execute(
            sa.select(Amp.id, Amp.compute_id).outerjoin(H, H.amphora_id == Amp.id)
            .where(Amp.status == A.ALLOCATED, Amp.load_balancer_id.is_not(None),
                   sa.or_(H.amphora_id.is_(None),
                          sa.and_(H.busy.is_(False), H.last_update >= cutoff)))
        ).all()
    return {r.compute_id or r.id: r.id for r in rows}


def expire(db: Database, amphora_ids: Sequence[str], cutoff: datetime) -> int:
    """Make these amphorae stale now (their last heartbeat moved before ``cutoff``), so the
    stale check fails them over without waiting for heartbeat_timeout."""
    if not amphora_ids:
        return 0

    def work(session: Session) -> int:
        silent = cutoff - timedelta(seconds=1)
        res = session.execute(sa.update(m.AmphoraHealth).where(
            m.AmphoraHealth.amphora_id.in_(list(amphora_ids)),
            m.AmphoraHealth.busy.is_(False))
            .values(last_update=silent)
            .execution_options(synchronize_session=False))
        have = set(session.scalars(sa.select(m.AmphoraHealth.amphora_id).where(
            m.AmphoraHealth.amphora_id.in_(list(amphora_ids)))))
        for amphora_id in amphora_ids:
            if amphora_id not in have:  # never heard from: give it a row, already silent
                session.add(m.AmphoraHealth(amphora_id=amphora_id, last_update=silent,
                                            busy=False))
        return int(res.rowcount or 0) + len(set(amphora_ids) - have)  # type: ignore[attr-defined]

    done: int = db.write_retrying(work)
    return done
