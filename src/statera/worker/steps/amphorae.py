"""Steps that make, wire up and remove amphorae through the compute, network and amphora
drivers. Action steps are idempotent (drivers key everything by amphora id); the database
steps around them record what the drivers reported."""

from __future__ import annotations

import dataclasses
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
from statera.drivers.network.base import PluggedInterface
from statera.services.common import new_id
from statera.services.spares import claim_spare
from statera.worker.engine import ActionStep, DbStep, Env
from statera.worker.steps import vrrp
from statera.worker.steps.context import LbContext
from statera.worker.steps.instances import instance_alive

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


def _new_amphora(env: Env, session: Session, ctx: LbContext, role: str,
                 priority: int | None) -> str:
    """A spare amphora when one is ready for this topology, else a new row to build."""
    if ctx.topology == env.deps.settings.controller_worker.loadbalancer_topology:
        spare = claim_spare(session, ctx.lb_id, role, priority)
        if spare is not None:
            return spare
    amp = m.Amphora(id=new_id(), status=A.PENDING_CREATE, load_balancer_id=ctx.lb_id,
                    role=role, vrrp_priority=priority,
                    vrrp_id=1 if priority is not None else None)
    session.add(amp)
    return amp.id


class PlanAmphorae(DbStep[LbContext]):
    """Create the rows of the amphorae this flow will build (one, or MASTER and BACKUP),
    before anything is built, so a resumed flow builds the same ones."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if ctx.new_amphora_ids:
            return
        for role, priority in _roles(ctx.topology):
            ctx.new_amphora_ids.append(_new_amphora(env, session, ctx, role, priority))

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
            if (ctx.topology == Topology.ACTIVE_STANDBY and len(old) == 2
                    and all(a.status in vrrp.SERVING for a in old)):
                # A serving pair: one at a time, the BACKUP first, so the VIP keeps
                # answering throughout (the next round replaces the other).
                old = sorted(old, key=lambda a: a.role != AmphoraRole.BACKUP)
                ctx.failover_queue = [[a.id] for a in old[1:]]
                old = old[:1]
            ctx.old_amphora_ids = [a.id for a in old]
            whole_set = True
        else:
            old = session.scalars(sa.select(m.Amphora).where(
                m.Amphora.id.in_(ctx.old_amphora_ids))).all()
            whole_set = False
        planned = vrrp.survivor_roles(session, ctx, list(old))
        if planned is None:
            # A load balancer failover with nobody left serving rebuilds the whole set.
            roles = {a.role for a in old}
            planned = [(role, priority) for role, priority in _roles(ctx.topology)
                       if whole_set or not old or role in roles]
        for role, priority in planned:
            ctx.new_amphora_ids.append(_new_amphora(env, session, ctx, role, priority))
        for amp in old:
            amp.status = A.PENDING_DELETE

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.new_amphora_ids))
                        .values(status=A.DELETED, load_balancer_id=None)
                        .execution_options(synchronize_session=False))
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.old_amphora_ids),
                                                   m.Amphora.status == A.PENDING_DELETE)
                        .values(status=A.ERROR).execution_options(synchronize_session=False))
        vrrp.demote_promoted(session, ctx)


class BuildAmphorae(ActionStep[LbContext]):
    """Ask the compute driver for each planned amphora (idempotent by amphora id)."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        prebuilt = {a.id for a in _amphorae(env, ctx.new_amphora_ids) if a.status == A.READY}
        for amp_id in ctx.new_amphora_ids:
            if amp_id in prebuilt:
                continue  # a spare: built and running already
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


MEMBER_PORT_OWNER = "statera:amphora-member-net"


class ApplyConfig(ActionStep[LbContext]):
    """Push the whole load balancer's desired config to every live amphora of it: first an
    interface (with an address of its own) on each network its members sit on, then
    allowed_cidrs, then haproxy.cfg.

    An amphora held in FAILOVER_STOPPED by the circuit breaker is silent and probably
    unreachable; waiting out the agent retries on it would hold the whole operation for
    minutes. It is skipped and marked ``config_stale`` instead, and the health manager
    pushes again once its heartbeats return (health/stale.py: ``submit_resyncs``)."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        tree = _tree(env, ctx.lb_id)
        targets = [a for a in tree.amphorae if a.status == A.ALLOCATED]
        held = [a.id for a in tree.amphorae
                if a.status == A.FAILOVER_STOPPED and not a.config_stale]
        if held:
            _set_config_stale(env, held, True)
        for amp in targets:
            ifaces = env.drivers.network.plug_member_networks(tree, amp)
            for iface in member_addresses(env, tree, amp, ifaces):
                env.drivers.amphora.post_network_plug(amp, iface)
            env.drivers.network.update_allowed_cidrs(tree, amp)
            env.drivers.amphora.apply_config(tree, amp)
        pushed = [a.id for a in targets if a.config_stale]
        if pushed:
            _set_config_stale(env, pushed, False)


def _set_config_stale(env: Env, amphora_ids: list[str], stale: bool) -> None:
    with env.deps.db.write() as session:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(amphora_ids))
                        .values(config_stale=stale)
                        .execution_options(synchronize_session=False))


def member_addresses(env: Env, lb: d.LoadBalancer, amp: d.Amphora,
                     ifaces: list[PluggedInterface]) -> list[PluggedInterface]:
    """Give every member-network interface the amphora's own address on that network: one
    port row per (amphora, network), taken once and reused by every later config push (so a
    re-run after a crash finds the same address); ports of networks no longer used are
    freed."""
    wanted = {i.network_id for i in ifaces if not i.ip_address}
    out: list[PluggedInterface] = []
    with env.deps.db.write() as session:
        ports = {p.network_id: p for p in session.scalars(sa.select(m.Port).where(
            m.Port.device_id == amp.id, m.Port.device_owner == MEMBER_PORT_OWNER))}
        for network_id, port in ports.items():
            if network_id not in wanted:
                session.delete(port)
        for iface in ifaces:
            if iface.ip_address:
                out.append(iface)
                continue
            address = ports[iface.network_id].ip_address if iface.network_id in ports else None
            if address is None:
                net = env.deps.networks.by_network(iface.network_id)
                if net is None:
                    raise StepFailed(f"network {iface.network_id} is not configured")
                address = env.deps.networks.take_address(
                    session, net, ip_address=None, name=f"octavia-amphora-{amp.id}",
                    device_owner=MEMBER_PORT_OWNER, device_id=amp.id,
                    project_id=lb.project_id).ip_address
            out.append(dataclasses.replace(iface, ip_address=address))
    return out


class RemoveDeadOldAmphorae(ActionStep[LbContext]):
    """Failover, first: an amphora being replaced whose instance is already dead (namespaces
    gone, agent or haproxy killed) is removed at once. It serves nothing, but its kernel may
    still hold the VIP and answer ARP for it, pulling clients away from the amphora that
    took over; live ones keep serving until their replacement is ready."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        with env.deps.db.read() as session:
            tree = load_tree(session, ctx.lb_id)
        for amp in _amphorae(env, ctx.old_amphora_ids):
            if instance_alive(env, amp):
                continue
            LOG.info("amphora %s is dead: removing it before building its replacement", amp.id)
            if tree is not None:
                _quietly(env.drivers.network.unplug_vip, tree, amp)
            env.drivers.compute.delete(amp.compute_id or amp.id)


class RemoveOldAmphorae(ActionStep[LbContext]):
    """Failover, last part: stop and delete the amphorae that were replaced."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        with env.deps.db.read() as session:
            tree = load_tree(session, ctx.lb_id)
        for amp in _amphorae(env, ctx.old_amphora_ids):
            if tree is not None:
                if instance_alive(env, amp):
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
            if instance_alive(env, amp):
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
        release_amphora_ports(session, ctx.old_amphora_ids)


def release_amphora_ports(session: Session, amphora_ids: list[str]) -> None:
    """Free the member-network and VRRP addresses of amphorae that are gone."""
    session.execute(sa.delete(m.Port).where(
        m.Port.device_id.in_(amphora_ids),
        m.Port.device_owner.in_([MEMBER_PORT_OWNER, vrrp.VRRP_PORT_OWNER])))


def _quietly(fn, *args):  # type: ignore[no-untyped-def]
    """Best effort on something that is going away anyway."""
    try:
        fn(*args)
    except Exception as exc:
        LOG.info("ignoring %s failure on a retiring amphora: %s", fn.__name__, exc)
