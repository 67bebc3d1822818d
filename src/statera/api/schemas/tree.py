"""The answer to a single-call create: the load balancer with its listeners (each with its
L7 policies and their rules) and its pools (each with members and health monitor) expanded,
as upstream's "full" response does."""

from __future__ import annotations

from typing import Any

from statera.api.schemas.healthmonitor import present_healthmonitor
from statera.api.schemas.l7policy import present_l7policy
from statera.api.schemas.l7rule import present_l7rule
from statera.api.schemas.listener import present_listener
from statera.api.schemas.loadbalancer import present_loadbalancer
from statera.api.schemas.member import present_member
from statera.api.schemas.pool import present_pool
from statera.services import loadbalancers as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps


def present_tree(deps: Deps, ctx: RequestContext, lb_id: str) -> dict[str, Any]:
    lb = svc.get_tree(deps, ctx, lb_id)
    out = present_loadbalancer(lb)
    listeners = []
    for li in lb.listeners:
        body = present_listener(li)
        policies = []
        for pol in li.l7policies:
            pbody = present_l7policy(pol)
            pbody["rules"] = [present_l7rule(r) for r in pol.rules]
            policies.append(pbody)
        body["l7policies"] = policies
        listeners.append(body)
    pools = []
    for pool in lb.pools:
        body = present_pool(pool)
        body["members"] = [present_member(mb) for mb in pool.members]
        body["healthmonitor"] = (present_healthmonitor(pool.health_monitor)
                                 if pool.health_monitor is not None else None)
        pools.append(body)
    out["listeners"] = listeners
    out["pools"] = pools
    return out
