"""Steps that move provisioning status: mark on revert, settle the tree at the end."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import OperatingStatus, ProvisioningStatus
from statera.worker.engine import DbStep, Env
from statera.worker.steps.context import LbContext

P = ProvisioningStatus
CHILD_MODELS: dict[str, type[m.Base]] = {
    "listener": m.Listener,
    "pool": m.Pool,
    "member": m.Member,
    "healthmonitor": m.HealthMonitor,
    "l7policy": m.L7Policy,
    "l7rule": m.L7Rule,
}


def tree_conditions(lb_id: str) -> list[tuple[type[m.Base], sa.ColumnElement[bool]]]:
    """(model, condition) for every kind of object in a load balancer's tree, leaves first."""
    listener_ids = sa.select(m.Listener.id).where(m.Listener.load_balancer_id == lb_id)
    pool_ids = sa.select(m.Pool.id).where(m.Pool.load_balancer_id == lb_id)
    policy_ids = sa.select(m.L7Policy.id).where(m.L7Policy.listener_id.in_(listener_ids))
    return [
        (m.L7Rule, m.L7Rule.l7policy_id.in_(policy_ids)),
        (m.L7Policy, m.L7Policy.listener_id.in_(listener_ids)),
        (m.Member, m.Member.pool_id.in_(pool_ids)),
        (m.HealthMonitor, m.HealthMonitor.pool_id.in_(pool_ids)),
        (m.Listener, m.Listener.load_balancer_id == lb_id),
        (m.Pool, m.Pool.load_balancer_id == lb_id),
    ]


def _set(session: Session, model: type[m.Base], cond: sa.ColumnElement[bool], frm: set[str],
         to: str) -> None:
    col = model.provisioning_status  # type: ignore[attr-defined]
    session.execute(sa.update(model).where(cond, col.in_(frm)).values(provisioning_status=to)
                    .execution_options(synchronize_session=False))


def _descendants(session: Session, model: type[m.Base], ids: list[str]) -> list[str]:
    """Ids of the rows the database deletes with these (ON DELETE CASCADE): their tags must
    go too."""
    out: list[str] = []
    if model is m.Listener:
        policies = list(session.scalars(sa.select(m.L7Policy.id).where(
            m.L7Policy.listener_id.in_(ids))))
        out += policies + _descendants(session, m.L7Policy, policies)
    elif model is m.L7Policy and ids:
        out += list(session.scalars(sa.select(m.L7Rule.id).where(m.L7Rule.l7policy_id.in_(ids))))
    elif model is m.Pool:
        out += list(session.scalars(sa.select(m.Member.id).where(m.Member.pool_id.in_(ids))))
        out += list(session.scalars(sa.select(m.HealthMonitor.id).where(
            m.HealthMonitor.pool_id.in_(ids))))
    return out


def remove_objects(session: Session, model: type[m.Base], cond: sa.ColumnElement[bool]) -> None:
    ids = list(session.scalars(sa.select(model.id).where(cond)))  # type: ignore[attr-defined]
    if not ids:
        return
    tagged = ids + _descendants(session, model, ids)
    session.execute(sa.delete(m.Tag).where(m.Tag.resource_id.in_(tagged)))
    if model is m.Listener:
        session.execute(sa.delete(m.ListenerStatistics).where(
            m.ListenerStatistics.listener_id.in_(ids)))
        # Policies of other listeners cannot point here, but pools may be shared: clear refs.
    if model is m.Pool:
        session.execute(sa.update(m.Listener).where(m.Listener.default_pool_id.in_(ids))
                        .values(default_pool_id=None).execution_options(
                            synchronize_session=False))
        session.execute(sa.update(m.L7Policy).where(m.L7Policy.redirect_pool_id.in_(ids))
                        .values(redirect_pool_id=None).execution_options(
                            synchronize_session=False))
    session.execute(sa.delete(model).where(model.id.in_(ids))  # type: ignore[attr-defined]
                    .execution_options(synchronize_session=False))


class SettleTree(DbStep[LbContext]):
    """The end of a successful change: every PENDING_CREATE/UPDATE object in the tree becomes
    ACTIVE, PENDING_DELETE children are removed, and the load balancer is ACTIVE again."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        # A new health monitor starts ONLINE (upstream); everything else keeps its operating
        # status, which the health manager owns.
        hm_cond = dict((mod, c) for mod, c in tree_conditions(ctx.lb_id))[m.HealthMonitor]
        session.execute(sa.update(m.HealthMonitor).where(
            hm_cond, m.HealthMonitor.provisioning_status == P.PENDING_CREATE)
            .values(operating_status=OperatingStatus.ONLINE)
            .execution_options(synchronize_session=False))
        for model, cond in tree_conditions(ctx.lb_id):
            col = model.provisioning_status  # type: ignore[attr-defined]
            remove_objects(session, model, sa.and_(cond, col == P.PENDING_DELETE))
            _set(session, model, cond, {P.PENDING_CREATE, P.PENDING_UPDATE}, P.ACTIVE)
        session.execute(sa.update(m.LoadBalancer).where(
            m.LoadBalancer.id == ctx.lb_id,
            m.LoadBalancer.provisioning_status.in_([P.PENDING_CREATE, P.PENDING_UPDATE]))
            .values(provisioning_status=P.ACTIVE).execution_options(synchronize_session=False))


class LoadBalancerErrorOnRevert(DbStep[LbContext]):
    """First step of load balancer flows: if the flow fails, the LB and whatever of its tree
    is still pending end in ERROR, never PENDING_*."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        return None

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        for model, cond in tree_conditions(ctx.lb_id):
            _set(session, model, cond, {P.PENDING_CREATE, P.PENDING_UPDATE, P.PENDING_DELETE},
                 P.ERROR)
        session.execute(sa.update(m.LoadBalancer).where(m.LoadBalancer.id == ctx.lb_id)
                        .values(provisioning_status=P.ERROR)
                        .execution_options(synchronize_session=False))


class ChildErrorOnRevert(DbStep[LbContext]):
    """First step of child flows: on failure the changed objects go to ERROR and their
    parents back to ACTIVE, so the tree can be changed again (upstream's behaviour)."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        return None

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        failed: dict[type[m.Base], list[str]] = {}
        if ctx.target_type in CHILD_MODELS and ctx.target_id:
            failed.setdefault(CHILD_MODELS[ctx.target_type], []).append(ctx.target_id)
        for ids in ctx.batch.values():
            failed.setdefault(m.Member, []).extend(ids)
        for model, ids in failed.items():
            session.execute(sa.update(model).where(model.id.in_(ids))  # type: ignore[attr-defined]
                            .values(provisioning_status=P.ERROR)
                            .execution_options(synchronize_session=False))
        for model, cond in tree_conditions(ctx.lb_id):
            _set(session, model, cond, {P.PENDING_CREATE, P.PENDING_UPDATE, P.PENDING_DELETE},
                 P.ACTIVE)
        session.execute(sa.update(m.LoadBalancer).where(
            m.LoadBalancer.id == ctx.lb_id,
            m.LoadBalancer.provisioning_status.in_([P.PENDING_UPDATE, P.PENDING_CREATE]))
            .values(provisioning_status=P.ACTIVE).execution_options(synchronize_session=False))
