"""Rotate amphora server certificates before they expire: issue a new one, push it through
the agent (which swaps it without a restart), record the new expiry. ``cert_busy`` is the
claim, so two housekeepers never rotate the same amphora at once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from statera.config.settings import HouseKeepingSection
from statera.db import models as m
from statera.db.database import Database
from statera.db.loaders import amphora_view
from statera.domain.enums import AmphoraStatus
from statera.drivers import Drivers

LOG = logging.getLogger(__name__)
# Amphorae with a running agent that can take a new certificate.
SERVING = (AmphoraStatus.ALLOCATED, AmphoraStatus.READY)


def rotate_expiring(db: Database, drivers: Drivers, hk: HouseKeepingSection,
                    now: datetime) -> list[str]:
    """One pass; returns the ids of the amphorae whose certificate was rotated."""
    horizon = now + timedelta(seconds=hk.cert_expiry_buffer)
    with db.read() as session:
        due = list(session.scalars(sa.select(m.Amphora.id).where(
            m.Amphora.status.in_(SERVING), m.Amphora.cert_busy.is_(False),
            m.Amphora.cert_expiration.is_not(None), m.Amphora.cert_expiration < horizon)))
    rotated = []
    for amphora_id in due:
        if _rotate_one(db, drivers, amphora_id):
            rotated.append(amphora_id)
    return rotated


def _rotate_one(db: Database, drivers: Drivers, amphora_id: str) -> bool:
    with db.write() as session:
        claimed = session.execute(sa.update(m.Amphora).where(
            m.Amphora.id == amphora_id, m.Amphora.cert_busy.is_(False))
            .values(cert_busy=True).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        row = session.get(m.Amphora, amphora_id) if claimed else None
        amp = amphora_view(row) if row is not None else None
    if amp is None:
        return False
    expiry = None
    try:
        pem, expiry = drivers.certs.issue_server_cert(amphora_id)
        drivers.amphora.rotate_certificate(amp, pem)
        LOG.info("rotated the server certificate of amphora %s (valid until %s)",
                 amphora_id, expiry)
        return True
    except Exception as exc:
        expiry = None
        LOG.warning("could not rotate the certificate of amphora %s: %s", amphora_id, exc)
        return False
    finally:
        values: dict[str, object] = {"cert_busy": False}
        if expiry is not None:
            values["cert_expiration"] = expiry.replace(tzinfo=None)
        with db.write() as session:
            session.execute(sa.update(m.Amphora).where(m.Amphora.id == amphora_id)
                            .values(**values).execution_options(synchronize_session=False))
