"""Flows on single amphorae from the admin API: failover, config push, delete."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import AmphoraStatus, Topology
from statera.worker.engine import ActionStep, DbStep, Env, Flow
from statera.worker.steps import amphorae as amp
from statera.worker.steps import vrrp
from statera.worker.steps.context import LbContext
from statera.worker.steps.lifecycle import LoadBalancerErrorOnRevert, SettleTree


class PushAgentConfig(ActionStep[LbContext]):
    """Render the amphora's agent config as it should be now and push it; the agent
    validates it, stores it and applies it (heartbeat controllers, intervals) live."""

    def execute(self, env: Env, ctx: LbContext) -> None:
        for a in amp._amphorae(env, [ctx.target_id or ""]):
            topology: str = Topology.SINGLE
            if a.load_balancer_id:
                with env.deps.db.read() as session:
                    lb = session.get(m.LoadBalancer, a.load_balancer_id)
                    topology = (lb.topology if lb is not None and lb.topology
                                else Topology.SINGLE)
            text = env.drivers.compute.agent_config(a.compute_id or a.id, topology)
            env.drivers.amphora.update_agent_config(a, agent_config=text)


class DeleteAmphoraCompute(ActionStep[LbContext]):
    def execute(self, env: Env, ctx: LbContext) -> None:
        for a in amp._amphorae(env, [ctx.target_id or ""]):
            env.drivers.compute.delete(a.compute_id or a.id)


class MarkAmphoraDeleted(DbStep[LbContext]):
    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id == ctx.target_id)
                        .values(status=AmphoraStatus.DELETED)
                        .execution_options(synchronize_session=False))
        session.execute(sa.delete(m.AmphoraHealth).where(
            m.AmphoraHealth.amphora_id == ctx.target_id))
        amp.release_amphora_ports(session, [ctx.target_id or ""])

    def revert(self, env: Env, session: Session, ctx: LbContext) -> None:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id == ctx.target_id,
                                                   m.Amphora.status != AmphoraStatus.DELETED)
                        .values(status=AmphoraStatus.ERROR)
                        .execution_options(synchronize_session=False))


class FailoverStart(DbStep[LbContext]):
    """Only the named amphora is replaced."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        if not ctx.old_amphora_ids and ctx.target_id:
            ctx.old_amphora_ids = [ctx.target_id]
        lb = session.get(m.LoadBalancer, ctx.lb_id) if ctx.lb_id else None
        if lb is not None:
            ctx.topology = lb.topology or ctx.topology


FAILOVER = Flow("failover_amphora", LbContext, [
    LoadBalancerErrorOnRevert(),
    FailoverStart(),
    amp.PlanReplacements(),
    amp.RemoveDeadOldAmphorae(),
    amp.BuildAmphorae(),
    amp.WaitAmphoraeReady(),
    amp.AllocateAmphorae(),
    vrrp.AllocateVrrpAddresses(),
    amp.PlugVip(),
    amp.ApplyConfig(),
    vrrp.EnsureVrrpGroup(),
    vrrp.RetireOldVrrp(),
    vrrp.ConfigureVrrp(),
    amp.RemoveOldAmphorae(),
    amp.MarkOldAmphoraeDeleted(),
    SettleTree(),
])

# An amphora with no load balancer (a spare, or one left behind) is simply deleted.
DELETE = Flow("delete_amphora", LbContext, [
    MarkAmphoraDeleted(),
    DeleteAmphoraCompute(),
])

CONFIG = Flow("update_amphora_config", LbContext, [PushAgentConfig()])


def _amp(op: m.Operation) -> dict[str, Any]:
    return {"lb_id": op.load_balancer_id or "", "target_type": "amphora",
            "target_id": op.target_id}


def _failover_flow(op: m.Operation) -> dict[str, Any]:
    return _amp(op)


FLOWS: dict[str, Any] = {
    "failover_amphora": (FAILOVER, _failover_flow),
    "delete_amphora": (DELETE, _amp),
    "update_amphora_config": (CONFIG, _amp),
}
