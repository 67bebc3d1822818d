"""Purge DELETED rows once they are older than the configured expiry ages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from statera.config.settings import HouseKeepingSection
from statera.db import models as m
from statera.db.database import Database
from statera.domain.enums import AmphoraStatus, ProvisioningStatus

FINISHED = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Purged:
    amphorae: int
    load_balancers: int
    operations: int


def purge_expired(db: Database, hk: HouseKeepingSection, now: datetime) -> Purged:
    amp_cutoff = now - timedelta(seconds=hk.amphora_expiry_age)
    lb_cutoff = now - timedelta(seconds=hk.load_balancer_expiry_age)

    def run(session: sa.orm.Session) -> Purged:
        amps = session.execute(sa.delete(m.Amphora).where(
            m.Amphora.status == AmphoraStatus.DELETED,
            sa.func.coalesce(m.Amphora.updated_at, m.Amphora.created_at) < amp_cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        lb_ids = list(session.scalars(sa.select(m.LoadBalancer.id).where(
            m.LoadBalancer.provisioning_status == ProvisioningStatus.DELETED,
            sa.func.coalesce(m.LoadBalancer.updated_at, m.LoadBalancer.created_at)
            < lb_cutoff)))
        if lb_ids:
            # Rows that point at the load balancer go first: not every backend enforces the
            # foreign keys' ON DELETE actions (SQLite without the pragma).
            for model, column in ((m.Vip, m.Vip.load_balancer_id),
                                  (m.AdditionalVip, m.AdditionalVip.load_balancer_id),
                                  (m.VrrpGroup, m.VrrpGroup.load_balancer_id)):
                session.execute(sa.delete(model).where(column.in_(lb_ids))
                                .execution_options(synchronize_session=False))
            session.execute(sa.update(m.Amphora).where(m.Amphora.load_balancer_id.in_(lb_ids))
                            .values(load_balancer_id=None)
                            .execution_options(synchronize_session=False))
            session.execute(sa.delete(m.LoadBalancer).where(m.LoadBalancer.id.in_(lb_ids))
                            .execution_options(synchronize_session=False))
        ops = session.execute(sa.delete(m.Operation).where(
            m.Operation.state.in_(FINISHED),
            sa.func.coalesce(m.Operation.finished_at, m.Operation.created_at) < lb_cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        return Purged(amphorae=amps or 0, load_balancers=len(lb_ids), operations=ops or 0)

    result: Purged = db.write_retrying(run)
    return result
