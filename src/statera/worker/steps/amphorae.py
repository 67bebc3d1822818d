"""Steps that make, wire up and remove amphorae through the compute, network and amphora
drivers. Action steps are idempotent (drivers key everything by amphora id); the database
steps around them record what the drivers reported."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.loaders import amphora_view, load_tree
from statera.db.types import utcnow
from statera.domain import model as d
from statera.domain.enums import AmphoraRole, AmphoraStatus, Topology
from statera.domain.errors import StepFailed, TemporaryFailure
from statera.drivers.compute.base import AmphoraBuild
from statera.services.common import new_id
from statera.worker.engine import ActionStep, DbStep, Env
from statera.worker.steps.context import LbContext

LOG = logging.getLogger(__name__)
A = AmphoraStatus


def _roles(topology: str) -> list[tuple[str, int | None]]:
    if topology == Topology.ACTIVE_STANDBY:
        return [(AmphoraRole.MASTER, 100), (AmphoraRole.BACKUP, 90)]
    return [(AmphoraRole.STANDALONE, None)]


def _amphorae(env: Env, ids: list[str]) -> list[d.Amphora]:
    with env.deps.db.read() as session:
        rows = session.scalars(sa.select(m.Amphora).where(m.Amphora.id.in_(ids))).all()
        by_id = {a.id: amphora_view(a) for a in rows}
    return [by_id[i] for i in ids if i in by_id]


def _tree(env: Env, lb_id: str) -> d.LoadBalancer:
    with env.deps.db.read() as session:
        tree = load_tree(session, lb_id)
    if tree is None:
        raise StepFailed(f"load balancer {lb_id} is gone")
    return tree


class PlanAmphorae(DbStep[LbContext]):
    """Create the rows of the amphorae this flow will build (one, or MASTER and BACKUP),
    before anything is built, so a resumed flow builds the same ones."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if ctx.new_amphora_ids:
            return
        for role, priority in _roles(ctx.topology):
            amp = m.Amphora(id=new_id(), status=A.PENDING_CREATE, load_balancer_id=ctx.lb_id,
                            role=role, vrrp_priority=priority,
                            vrrp_id=1 if priority is not None else None)
            session.add(amp)
            ctx.new_amphora_ids.append(amp.id)

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.new_amphora_ids))
                        .values(status=A.DELETED, load_balancer_id=None)
                        .execution_options(synchronize_session=False))


class PlanReplacements(DbStep[LbContext]):
    """Failover: one new amphora row per amphora being replaced, taking over its role."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if ctx.new_amphora_ids:
            return
        if not ctx.old_amphora_ids:
            old = session.scalars(sa.select(m.Amphora).where(
                m.Amphora.load_balancer_id == ctx.lb_id,
                m.Amphora.status.notin_([A.DELETED, A.PENDING_DELETE]))
                .order_by(m.Amphora.created_at)).all()
            ctx.old_amphora_ids = [a.id for a in old]
        else:
            old = session.scalars(sa.select(m.Amphora).where(
                m.Amphora.id.in_(ctx.old_amphora_ids))).all()
        roles = {a.role for a in old}
        for role, priority in _roles(ctx.topology):
            if old and role not in roles:
                continue
            amp = m.Amphora(id=new_id(), status=A.PENDING_CREATE, load_balancer_id=ctx.lb_id,
                            role=role, vrrp_priority=priority,
                            vrrp_id=1 if priority is not None else None)
            session.add(amp)
            ctx.new_amphora_ids.append(amp.id)
        for amp in old:
            amp.status = A.PENDING_DELETE

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.new_amphora_ids))
                        .values(status=A.DELETED, load_balancer_id=None)
                        .execution_options(synchronize_session=False))
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.old_amphora_ids),
                                                   m.Amphora.status == A.PENDING_DELETE)
                        .values(status=A.ERROR).execution_options(synchronize_session=False))


class BuildAmphorae(ActionStep[LbContext]):
    """Ask the compute driver for each planned amphora (idempotent by amphora id)."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        for amp_id in ctx.new_amphora_ids:
            # A fresh certificate on every try: the key never leaves this call but to the
            # amphora, and is never stored in the flow's context.
            server_pem, expiry = env.drivers.certs.issue_server_cert(amp_id)
            instance = env.drivers.compute.build(AmphoraBuild(
                amphora_id=amp_id, topology=ctx.topology, server_pem=server_pem,
                client_ca_pem=env.drivers.certs.client_ca_pem()))
            if instance.status == "ERROR":
                raise StepFailed(f"compute driver could not build amphora {amp_id}")
            with env.deps.db.write() as session:
                session.execute(sa.update(m.Amphora).where(m.Amphora.id == amp_id).values(
                    compute_id=instance.compute_id, lb_network_ip=instance.lb_network_ip,
                    cert_expiration=expiry.replace(tzinfo=None) if expiry else None,
                    status=A.BOOTING).execution_options(synchronize_session=False))

    def revert(self, env: Env, ctx: LbContext) -> None:
        for amp in _amphorae(env, ctx.new_amphora_ids):
            env.drivers.compute.delete(amp.compute_id or amp.id)


class WaitAmphoraeReady(ActionStep[LbContext]):
    def execute(self, env: Env, ctx: LbContext) -> None:
        for amp in _amphorae(env, ctx.new_amphora_ids):
            try:
                env.drivers.amphora.wait_ready(amp, timeout=30.0)
            except TemporaryFailure:
                raise
            except Exception as exc:
                raise TemporaryFailure(f"amphora {amp.id} not ready: {exc}", delay=0.5) \
                    from exc


class AllocateAmphorae(DbStep[LbContext]):
    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.new_amphora_ids))
                        .values(status=A.ALLOCATED, load_balancer_id=ctx.lb_id)
                        .execution_options(synchronize_session=False))


class PlugVip(ActionStep[LbContext]):
    def execute(self, env: Env, ctx: LbContext) -> None:
        tree = _tree(env, ctx.lb_id)
        for amp in _amphorae(env, ctx.new_amphora_ids):
            iface = env.drivers.network.plug_vip(tree, amp)
            env.drivers.amphora.post_vip_plug(tree, amp, iface)

    def revert(self, env: Env, ctx: LbContext) -> None:
        with env.deps.db.read() as session:
            tree = load_tree(session, ctx.lb_id)
        if tree is None:
            return
        for amp in _amphorae(env, ctx.new_amphora_ids):
            env.drivers.network.unplug_vip(tree, amp)


class ApplyConfig(ActionStep[LbContext]):
    """Push the whole load balancer's desired config to every live amphora of it."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        tree = _tree(env, ctx.lb_id)
        targets = [a for a in tree.amphorae if a.status == A.ALLOCATED]
        for amp in targets:
            for iface in env.drivers.network.plug_member_networks(tree, amp):
                env.drivers.amphora.post_network_plug(amp, iface)
            env.drivers.network.update_allowed_cidrs(tree, amp)
            env.drivers.amphora.apply_config(tree, amp)


class RemoveOldAmphorae(ActionStep[LbContext]):
    """Failover, last part: stop and delete the amphorae that were replaced."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        with env.deps.db.read() as session:
            tree = load_tree(session, ctx.lb_id)
        for amp in _amphorae(env, ctx.old_amphora_ids):
            if tree is not None:
                _quietly(env.drivers.amphora.remove_config, tree, amp)
                _quietly(env.drivers.network.unplug_vip, tree, amp)
            env.drivers.compute.delete(amp.compute_id or amp.id)


class RemoveLoadBalancerAmphorae(ActionStep[LbContext]):
    """Delete: stop serving, unplug and delete every amphora of the load balancer."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        tree = _tree(env, ctx.lb_id)
        if not ctx.old_amphora_ids:
            with env.deps.db.read() as session:
                ctx.old_amphora_ids = list(session.scalars(sa.select(m.Amphora.id).where(
                    m.Amphora.load_balancer_id == ctx.lb_id, m.Amphora.status != A.DELETED)))
        for amp in _amphorae(env, ctx.old_amphora_ids):
            _quietly(env.drivers.amphora.remove_config, tree, amp)
            _quietly(env.drivers.network.unplug_vip, tree, amp)
            env.drivers.compute.delete(amp.compute_id or amp.id)


class MarkOldAmphoraeDeleted(DbStep[LbContext]):
    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.old_amphora_ids))
                        .values(status=A.DELETED, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
        session.execute(sa.delete(m.AmphoraHealth).where(
            m.AmphoraHealth.amphora_id.in_(ctx.old_amphora_ids)))


def _quietly(fn, *args):  # type: ignore[no-untyped-def]
    """Best effort on something that is going away anyway."""
    try:
        fn(*args)
    except Exception as exc:
        LOG.info("ignoring %s failure on a retiring amphora: %s", fn.__name__, exc)
