"""Steps of ACTIVE_STANDBY load balancers: VRRP addresses, the VRRP group, keepalived.

Each amphora of a pair has an address of its own on the VIP network (its ``vrrp_ip``, a port
row owned by ``statera:amphora-vrrp``); the VIP itself is held by keepalived on whichever
amphora is MASTER. Every step here does nothing for a SINGLE load balancer, so the flows list
them unconditionally.

A failover retires the old amphora's keepalived first (a graceful stop: a MASTER hands the
VIP to its peer at once) and then configures the pair: the survivor keeps the VIP and becomes
MASTER (priority 100), the new amphora joins as BACKUP (90); with ``nopreempt`` nobody takes
the VIP back.
"""

from __future__ import annotations

import logging
import secrets
import string

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.loaders import amphora_view, load_tree
from statera.domain import model as d
from statera.domain.enums import AmphoraRole, AmphoraStatus, Topology
from statera.domain.errors import StepFailed
from statera.drivers.amphora.base import VrrpSpec
from statera.worker.engine import ActionStep, DbStep, Env, Step
from statera.worker.steps.context import LbContext
from statera.worker.steps.instances import instance_alive

LOG = logging.getLogger(__name__)
A = AmphoraStatus
VRRP_PORT_OWNER = "statera:amphora-vrrp"
# Amphorae that serve their load balancer: allocated, or held by the health manager's
# circuit breaker (still running, still holding or backing the VIP).
SERVING = frozenset({A.ALLOCATED, A.FAILOVER_STOPPED})
MASTER_PRIORITY, BACKUP_PRIORITY = 100, 90


def _active_standby(ctx: LbContext) -> bool:
    return ctx.topology == Topology.ACTIVE_STANDBY


def _amphorae(env: Env, ids: list[str]) -> list[d.Amphora]:
    with env.deps.db.read() as session:
        return [amphora_view(a) for a in session.scalars(
            sa.select(m.Amphora).where(m.Amphora.id.in_(ids)))]


def _tree(env: Env, lb_id: str) -> d.LoadBalancer:
    with env.deps.db.read() as session:
        tree = load_tree(session, lb_id)
    if tree is None:
        raise StepFailed(f"load balancer {lb_id} is gone")
    return tree


class ReadTopology(DbStep[LbContext]):
    """The load balancer's own topology (an operation's payload may not carry it)."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        lb = session.get(m.LoadBalancer, ctx.lb_id)
        if lb is not None and lb.topology:
            ctx.topology = lb.topology


class AllocateVrrpAddresses(DbStep[LbContext]):
    """Give each new amphora its own address on the VIP network (once: a resumed flow finds
    the port it took) and record the VIP it will carry (ha_ip)."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if not _active_standby(ctx) or not ctx.new_amphora_ids:
            return
        lb = session.get(m.LoadBalancer, ctx.lb_id)
        vip = lb.vip if lb is not None else None
        if vip is None or not vip.network_id or not vip.ip_address:
            raise StepFailed(f"load balancer {ctx.lb_id} has no VIP")
        net = env.deps.networks.by_network(vip.network_id)
        if net is None:
            raise StepFailed(f"network {vip.network_id} is not configured")
        for amp in session.scalars(sa.select(m.Amphora).where(
                m.Amphora.id.in_(ctx.new_amphora_ids))):
            port = session.scalars(sa.select(m.Port).where(
                m.Port.device_id == amp.id, m.Port.device_owner == VRRP_PORT_OWNER)).first()
            if port is None:
                port = env.deps.networks.take_address(
                    session, net, ip_address=None, name=f"octavia-lb-vrrp-{amp.id}",
                    device_owner=VRRP_PORT_OWNER, device_id=amp.id,
                    project_id=lb.project_id if lb is not None else None)
            amp.vrrp_ip, amp.vrrp_port_id = port.ip_address, port.id
            amp.ha_ip, amp.ha_port_id = vip.ip_address, vip.port_id
            # Learnt from the agent once the interface is plugged (ConfigureVrrp).
            amp.vrrp_interface = None

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.delete(m.Port).where(m.Port.device_id.in_(ctx.new_amphora_ids),
                                                m.Port.device_owner == VRRP_PORT_OWNER))
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.new_amphora_ids))
                        .values(vrrp_ip=None, vrrp_port_id=None, ha_ip=None, ha_port_id=None)
                        .execution_options(synchronize_session=False))


class EnsureVrrpGroup(DbStep[LbContext]):
    """The load balancer's VRRP group row: its advert interval (from [keepalived_vrrp] when
    the group is made, kept afterwards) and, under VRRPv2, its password."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if not _active_standby(ctx) or session.get(m.VrrpGroup, ctx.lb_id) is not None:
            return
        conf = env.deps.settings.keepalived_vrrp
        v2 = conf.vrrp_version == 2
        alphabet = string.ascii_letters + string.digits
        session.add(m.VrrpGroup(
            load_balancer_id=ctx.lb_id, vrrp_group_name=ctx.lb_id.replace("-", ""),
            vrrp_auth_type="PASS" if v2 else None,
            vrrp_auth_pass="".join(secrets.choice(alphabet) for _ in range(8)) if v2 else None,
            advert_int=float(max(1, round(conf.vrrp_advert_int)) if v2
                             else conf.vrrp_advert_int)))


def vrrp_spec(env: Env, lb: d.LoadBalancer) -> VrrpSpec:
    conf = env.deps.settings.keepalived_vrrp
    with env.deps.db.read() as session:
        group = session.get(m.VrrpGroup, lb.id)
        advert = group.advert_int if group is not None and group.advert_int else None
        auth_pass = group.vrrp_auth_pass if group is not None else None
    net = env.deps.networks.by_network(lb.vip.network_id or "") if lb.vip else None
    version = 2 if auth_pass else conf.vrrp_version
    return VrrpSpec(
        version=version,
        advert_int=advert if advert is not None else conf.vrrp_advert_int,
        auth_pass=auth_pass if version == 2 else None,
        check_interval=conf.vrrp_check_interval, fail_count=conf.vrrp_fail_count,
        success_count=conf.vrrp_success_count,
        garp_refresh_interval=conf.vrrp_garp_refresh_interval,
        garp_refresh_count=conf.vrrp_garp_refresh_count,
        vip_cidr=net.cidr if net is not None else None,
        vip_gateway=net.gateway_ip if net is not None else None)


class RetireOldVrrp(ActionStep[LbContext]):
    """Failover: stop keepalived on the amphorae being replaced before the pair is
    reconfigured. A live MASTER hands the VIP to its peer within a fraction of a second (a
    planned switchover); one whose instance is gone is skipped, an unreachable agent after
    one try."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        if not _active_standby(ctx):
            return
        for amp in _amphorae(env, ctx.old_amphora_ids):
            if not instance_alive(env, amp):
                continue
            try:
                env.drivers.amphora.stop_vrrp(amp)
            except Exception as exc:
                LOG.info("keepalived of retiring amphora %s not stopped: %s", amp.id, exc)


class ConfigureVrrp(ActionStep[LbContext]):
    """Upload keepalived.conf to every serving amphora of the pair and apply it: the
    amphorae already serving first (reload), the new ones last (start), so a new amphora
    hears the MASTER's adverts as soon as it starts and stays BACKUP."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        if not _active_standby(ctx):
            return
        tree = _tree(env, ctx.lb_id)
        live = [a for a in tree.amphorae if a.status in SERVING and a.vrrp_ip]
        if not live:
            return
        learnt = False
        for amp in live:
            if not amp.vrrp_interface:
                name = env.drivers.amphora.get_interface(amp, amp.vrrp_ip or "")
                with env.deps.db.write() as session:
                    session.execute(sa.update(m.Amphora).where(m.Amphora.id == amp.id)
                                    .values(vrrp_interface=name)
                                    .execution_options(synchronize_session=False))
                learnt = True
        if learnt:
            tree = _tree(env, ctx.lb_id)
            live = [a for a in tree.amphorae if a.status in SERVING and a.vrrp_ip]
        spec = vrrp_spec(env, tree)
        new = set(ctx.new_amphora_ids)
        # Serving amphorae first, then by priority (the would-be MASTER starts first).
        live.sort(key=lambda a: (a.id in new, -(a.vrrp_priority or 0)))
        for amp in live:
            env.drivers.amphora.update_vrrp_config(tree, amp, spec)
        for amp in live:
            if amp.id in new:
                env.drivers.amphora.start_vrrp(amp)
            else:
                env.drivers.amphora.reload_vrrp(amp)


def survivor_roles(session: Session, ctx: LbContext, old: list[m.Amphora]
                   ) -> list[tuple[str, int | None]] | None:
    """ACTIVE_STANDBY, some amphorae replaced while others keep serving: the survivors keep
    the VIP and become MASTER; the replacements join as BACKUP. Returns the roles of the
    replacements, or None when this is not such a failover (upstream's roles apply)."""
    if not _active_standby(ctx) or not old:
        return None
    old_ids = {a.id for a in old}
    survivors = [a for a in session.scalars(sa.select(m.Amphora).where(
        m.Amphora.load_balancer_id == ctx.lb_id, m.Amphora.status.in_(SERVING)))
        if a.id not in old_ids]
    if not survivors:
        return None
    for amp in survivors[:1]:
        if amp.role != AmphoraRole.MASTER:
            ctx.promoted_amphora_ids.append(amp.id)
            amp.role, amp.vrrp_priority = AmphoraRole.MASTER, MASTER_PRIORITY
    planned: list[tuple[str, int | None]] = [(AmphoraRole.BACKUP, BACKUP_PRIORITY) for _ in old]
    return planned


def demote_promoted(session: Session, ctx: LbContext) -> None:
    """Revert of survivor_roles: a survivor made MASTER for a failover that did not happen
    goes back to BACKUP."""
    if ctx.promoted_amphora_ids:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id.in_(ctx.promoted_amphora_ids))
                        .values(role=AmphoraRole.BACKUP, vrrp_priority=BACKUP_PRIORITY)
                        .execution_options(synchronize_session=False))
        ctx.promoted_amphora_ids = []


# ---- load balancer failover, one amphora at a time --------------------------------------

class NextFailoverRound(DbStep[LbContext]):
    """Between two rounds of a load balancer failover: the next amphora to replace becomes
    the one this round retires. Nothing to do when the first round replaced them all."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if not ctx.failover_queue:
            return
        ctx.old_amphora_ids = ctx.failover_queue.pop(0)
        ctx.new_amphora_ids = []
        ctx.promoted_amphora_ids = []
        ctx.failover_round += 1


class _DbInRound(DbStep[LbContext]):
    def __init__(self, inner: DbStep[LbContext], round_: int) -> None:
        self.name = f"{inner.name}#{round_}"
        super().__init__()
        self.inner, self.round = inner, round_

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if ctx.failover_round == self.round:
            self.inner.execute(env, session, ctx)

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        if ctx.failover_round == self.round:
            self.inner.revert(env, session, ctx)


class _ActionInRound(ActionStep[LbContext]):
    def __init__(self, inner: ActionStep[LbContext], round_: int) -> None:
        self.name = f"{inner.name}#{round_}"
        super().__init__()
        self.inner, self.round = inner, round_

    def execute(self, env: Env, ctx: LbContext) -> None:
        if ctx.failover_round == self.round:
            self.inner.execute(env, ctx)

    def revert(self, env: Env, ctx: LbContext) -> None:
        if ctx.failover_round == self.round:
            self.inner.revert(env, ctx)


def in_round(steps: list[Step[LbContext]], round_: int) -> list[Step[LbContext]]:
    """The same steps, run only in the given round of a load balancer failover (named
    ``<step>#<round>`` so the engine records them apart)."""
    out: list[Step[LbContext]] = []
    for step in steps:
        if isinstance(step, DbStep):
            out.append(_DbInRound(step, round_))
        elif isinstance(step, ActionStep):
            out.append(_ActionInRound(step, round_))
        else:
            raise TypeError(f"{step.name} is neither a DbStep nor an ActionStep")
    return out
