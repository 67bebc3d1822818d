"""Remove what nothing owns: amphorae left building by a crashed spare build, certificate
claims left by a crashed rotation, and compute instances on this host (namespaces, veths,
agent processes, files) with no live amphora row."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from statera.config.settings import HouseKeepingSection
from statera.db import models as m
from statera.db.database import Database
from statera.domain.enums import AmphoraStatus
from statera.drivers import Drivers

LOG = logging.getLogger(__name__)
A = AmphoraStatus


@dataclass(frozen=True)
class Swept:
    orphan_amphorae: list[str]
    stale_cert_claims: int
    host_instances: list[str]


def sweep(db: Database, drivers: Drivers, hk: HouseKeepingSection, now: datetime) -> Swept:
    cutoff = now - timedelta(seconds=hk.orphan_grace)
    changed = sa.func.coalesce(m.Amphora.updated_at, m.Amphora.created_at)
    with db.read() as session:
        orphans = list(session.scalars(sa.select(m.Amphora.id).where(
            m.Amphora.status.in_((A.PENDING_CREATE, A.BOOTING)),
            m.Amphora.load_balancer_id.is_(None), changed < cutoff)))
    for amphora_id in orphans:
        LOG.warning("removing amphora %s: left building with no load balancer", amphora_id)
        drivers.compute.delete(amphora_id)
        with db.write() as session:
            session.execute(sa.update(m.Amphora).where(
                m.Amphora.id == amphora_id, m.Amphora.status.in_((A.PENDING_CREATE, A.BOOTING)),
                m.Amphora.load_balancer_id.is_(None)).values(status=A.DELETED)
                .execution_options(synchronize_session=False))
    with db.write() as session:
        stale = session.execute(sa.update(m.Amphora).where(
            m.Amphora.cert_busy.is_(True), changed < cutoff).values(cert_busy=False)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    # List the host first, then read the rows: an instance is only ever built after its row
    # is committed, so one listed here has its row visible below unless it is truly orphaned.
    on_host = drivers.compute.instances()
    with db.read() as session:
        live = set(session.scalars(sa.select(m.Amphora.compute_id).where(
            m.Amphora.status != A.DELETED, m.Amphora.compute_id.is_not(None))))
        live |= set(session.scalars(sa.select(m.Amphora.id).where(
            m.Amphora.status != A.DELETED)))
    leftovers = [c for c in on_host if c not in live]
    for compute_id in leftovers:
        LOG.warning("removing compute instance %s: no amphora owns it", compute_id)
        try:
            drivers.compute.delete(compute_id)
        except Exception as exc:
            LOG.error("could not remove compute instance %s: %s", compute_id, exc)
    return Swept(orphan_amphorae=orphans, stale_cert_claims=stale or 0,
                 host_instances=leftovers)
