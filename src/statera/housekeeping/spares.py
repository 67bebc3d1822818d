"""Keep ``spare_amphora_pool_size`` spare amphorae built and ready (services/spares.py:
flows take them)."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from statera.config.settings import Settings
from statera.db import models as m
from statera.db.database import Database
from statera.db.loaders import amphora_view
from statera.db.types import utcnow
from statera.domain.enums import AmphoraStatus
from statera.drivers import Drivers
from statera.drivers.compute.base import AmphoraBuild
from statera.services.common import new_id
from statera.services.spares import count_spares

LOG = logging.getLogger(__name__)
A = AmphoraStatus
BUILDING = (A.PENDING_CREATE, A.BOOTING)


def fill_spare_pool(db: Database, drivers: Drivers, settings: Settings) -> list[str]:
    """Build spares until the pool has its size (counting spares being built); returns the
    ids of the spares made ready in this pass."""
    wanted = settings.house_keeping.spare_amphora_pool_size
    with db.read() as session:
        have = count_spares(session) + int(session.scalar(
            sa.select(sa.func.count()).select_from(m.Amphora).where(
                m.Amphora.status.in_(BUILDING), m.Amphora.load_balancer_id.is_(None))) or 0)
    made = []
    for _ in range(max(0, wanted - have)):
        amphora_id = _build_spare(db, drivers, settings)
        if amphora_id is None:
            break
        made.append(amphora_id)
    return made


def _set(db: Database, amphora_id: str, **values: object) -> None:
    with db.write() as session:
        session.execute(sa.update(m.Amphora).where(m.Amphora.id == amphora_id)
                        .values(updated_at=utcnow(), **values)
                        .execution_options(synchronize_session=False))


def _build_spare(db: Database, drivers: Drivers, settings: Settings) -> str | None:
    amphora_id = new_id()
    with db.write() as session:
        session.add(m.Amphora(id=amphora_id, status=A.PENDING_CREATE))
    try:
        pem, expiry = drivers.certs.issue_server_cert(amphora_id)
        instance = drivers.compute.build(AmphoraBuild(
            amphora_id=amphora_id,
            topology=settings.controller_worker.loadbalancer_topology,
            server_pem=pem, client_ca_pem=drivers.certs.client_ca_pem()))
        if instance.status == "ERROR":
            raise RuntimeError("the compute driver reported ERROR")
        _set(db, amphora_id, status=A.BOOTING, compute_id=instance.compute_id,
             lb_network_ip=instance.lb_network_ip,
             cert_expiration=expiry.replace(tzinfo=None) if expiry else None)
        with db.read() as session:
            row = session.get(m.Amphora, amphora_id)
            amp = amphora_view(row) if row is not None else None
        if amp is None:
            raise RuntimeError("its row is gone")
        drivers.amphora.wait_ready(amp, timeout=30.0)
    except Exception as exc:
        LOG.warning("could not build spare amphora %s: %s", amphora_id, exc)
        try:
            drivers.compute.delete(amphora_id)
        finally:
            _set(db, amphora_id, status=A.DELETED)
        return None
    # Only a spare still unclaimed and still building becomes READY.
    with db.write() as session:
        session.execute(sa.update(m.Amphora).where(
            m.Amphora.id == amphora_id, m.Amphora.status == A.BOOTING,
            m.Amphora.load_balancer_id.is_(None)).values(status=A.READY, updated_at=utcnow())
            .execution_options(synchronize_session=False))
    LOG.info("spare amphora %s is ready", amphora_id)
    return amphora_id
