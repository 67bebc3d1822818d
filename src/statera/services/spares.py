"""Spare amphorae: built and ready (agent running, no load balancer yet), kept by
housekeeping (``[house_keeping] spare_amphora_pool_size``) and taken by create and failover
flows of the default topology instead of building a new amphora."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import AmphoraStatus

SPARE = AmphoraStatus.READY


def spare_filter() -> list[sa.ColumnElement[bool]]:
    return [m.Amphora.status == SPARE, m.Amphora.load_balancer_id.is_(None)]


def count_spares(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(m.Amphora)
                              .where(*spare_filter())) or 0)


def claim_spare(session: Session, lb_id: str, role: str | None,
                priority: int | None) -> str | None:
    """Take one spare for ``lb_id`` (compare-and-set, so concurrent flows never share one);
    its status stays READY until the flow allocates it. None when there is no spare."""
    for _ in range(5):
        spare_id = session.scalar(sa.select(m.Amphora.id).where(*spare_filter())
                                  .order_by(m.Amphora.created_at).limit(1))
        if spare_id is None:
            return None
        taken = session.execute(sa.update(m.Amphora).where(
            m.Amphora.id == spare_id, *spare_filter()).values(
            load_balancer_id=lb_id, role=role, vrrp_priority=priority,
            vrrp_id=1 if priority is not None else None)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if taken:
            return str(spare_id)
    return None
