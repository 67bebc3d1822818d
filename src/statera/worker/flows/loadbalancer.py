"""Load balancer flows: create (with its tree), update, delete, failover."""

from __future__ import annotations

from typing import Any

from statera.db import models as m
from statera.worker.engine import Flow, Step
from statera.worker.steps import amphorae as amp
from statera.worker.steps import vrrp
from statera.worker.steps.context import LbContext
from statera.worker.steps.lifecycle import LoadBalancerErrorOnRevert, SettleTree
from statera.worker.steps.loadbalancer import DeleteLoadBalancerRecords

CREATE = Flow("create_load_balancer", LbContext, [
    LoadBalancerErrorOnRevert(),
    amp.PlanAmphorae(),
    amp.BuildAmphorae(),
    amp.WaitAmphoraeReady(),
    amp.AllocateAmphorae(),
    vrrp.AllocateVrrpAddresses(),
    amp.PlugVip(),
    amp.ApplyConfig(),
    vrrp.EnsureVrrpGroup(),
    vrrp.ConfigureVrrp(),
    SettleTree(),
])

UPDATE = Flow("update_load_balancer", LbContext, [
    LoadBalancerErrorOnRevert(),
    amp.ApplyConfig(),
    SettleTree(),
])

DELETE = Flow("delete_load_balancer", LbContext, [
    LoadBalancerErrorOnRevert(),
    amp.RemoveLoadBalancerAmphorae(),
    amp.MarkOldAmphoraeDeleted(),
    DeleteLoadBalancerRecords(),
])

# Build the replacements first, then retire the old amphorae: the load balancer keeps
# serving from the old ones until the new ones have their config. An ACTIVE_STANDBY pair is
# replaced one amphora per round (the BACKUP first), so one of them always holds the VIP.
REPLACE: list[Step[LbContext]] = [
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
]

FAILOVER = Flow("failover_load_balancer", LbContext, [
    LoadBalancerErrorOnRevert(),
    vrrp.ReadTopology(),
    *REPLACE,
    vrrp.NextFailoverRound(),
    *vrrp.in_round(REPLACE, 2),
    SettleTree(),
])


def _lb(op: m.Operation) -> dict[str, Any]:
    return {"lb_id": op.load_balancer_id, "target_type": op.target_type,
            "target_id": op.target_id,
            "topology": str(op.payload.get("topology", "SINGLE"))}


FLOWS = {
    "create_load_balancer": (CREATE, _lb),
    "update_load_balancer": (UPDATE, _lb),
    "delete_load_balancer": (DELETE, _lb),
    "failover_load_balancer": (FAILOVER, _lb),
}
