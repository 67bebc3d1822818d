"""Steps particular to deleting a load balancer."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.types import utcnow
from statera.domain.enums import OperatingStatus, ProvisioningStatus
from statera.worker.engine import DbStep, Env
from statera.worker.steps.context import LbContext
from statera.worker.steps.lifecycle import remove_objects, tree_conditions


class DeleteLoadBalancerRecords(DbStep[LbContext]):
    """Remove the tree's rows, free the VIP addresses Statera allocated, and keep the load
    balancer row as DELETED (housekeeping purges it after load_balancer_expiry_age)."""

    def execute(self, env: Env, session: Session, ctx: LbContext) -> None:
        for model, cond in tree_conditions(ctx.lb_id):
            remove_objects(session, model, cond)
        lb = session.get(m.LoadBalancer, ctx.lb_id)
        if lb is None:
            return
        vip = lb.vip
        if vip is not None and vip.port_id:
            if vip.octavia_owned:
                session.execute(sa.delete(m.Port).where(m.Port.id == vip.port_id))
            else:
                session.execute(sa.update(m.Port).where(m.Port.id == vip.port_id)
                                .values(device_id=None, device_owner=None))
        for extra in lb.additional_vips:
            if extra.port_id:
                session.execute(sa.delete(m.Port).where(m.Port.id == extra.port_id))
        session.execute(sa.delete(m.Port).where(m.Port.device_id == ctx.lb_id,
                                                m.Port.device_owner == "Octavia"))
        session.execute(sa.delete(m.Tag).where(m.Tag.resource_id == ctx.lb_id))
        session.execute(sa.delete(m.VrrpGroup).where(m.VrrpGroup.load_balancer_id == ctx.lb_id))
        lb.provisioning_status = ProvisioningStatus.DELETED
        lb.operating_status = OperatingStatus.OFFLINE
        lb.updated_at = utcnow()
