"""Housekeeping passes against a real (SQLite) database and the noop drivers: purge of
expired rows, certificate rotation with the real local CA, the spare pool (built, taken by a
create, refilled) and the sweep of orphans."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from statera.db import models as m
from statera.db.types import utcnow
from statera.drivers.certs import init_pki
from statera.housekeeping.certs import rotate_expiring
from statera.housekeeping.purge import purge_expired
from statera.housekeeping.spares import fill_spare_pool
from statera.housekeeping.sweep import sweep
from tests.conftest import Api, build_api

DAY = timedelta(days=1)


def _amphora(api: Api, **values: object) -> str:
    row = m.Amphora(id=str(uuid.uuid4()), **values)
    with api.deps.db.write() as s:
        s.add(row)
    return row.id


def test_purge_removes_only_expired_deleted_rows(api: Api) -> None:
    hk = api.deps.settings.house_keeping
    now = utcnow()
    old = _amphora(api, status="DELETED", updated_at=now - 8 * DAY)
    recent = _amphora(api, status="DELETED", updated_at=now - DAY)
    alive = _amphora(api, status="ALLOCATED", updated_at=now - 30 * DAY)
    gone = api.make_lb()
    kept = api.make_lb()
    api.delete(f"/v2/lbaas/loadbalancers/{gone['id']}")
    api.settle()
    with api.deps.db.write() as s:
        s.execute(sa.update(m.LoadBalancer).where(m.LoadBalancer.id == gone["id"])
                  .values(updated_at=now - 8 * DAY))
        s.execute(sa.update(m.Operation).values(finished_at=now - 8 * DAY))

    purged = purge_expired(api.deps.db, hk, now)

    assert purged.load_balancers == 1 and purged.operations >= 2
    with api.deps.db.read() as s:
        ids = set(s.scalars(sa.select(m.Amphora.id)))
        lbs = set(s.scalars(sa.select(m.LoadBalancer.id)))
        vips = set(s.scalars(sa.select(m.Vip.load_balancer_id)))
    assert old not in ids and {recent, alive} <= ids
    assert gone["id"] not in lbs and kept["id"] in lbs and gone["id"] not in vips
    # A second pass finds nothing more.
    again = purge_expired(api.deps.db, hk, now)
    assert (again.amphorae, again.load_balancers, again.operations) == (0, 0, 0)


def test_certificates_close_to_expiry_are_rotated(api: Api, tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki")
    drivers = dataclasses.replace(api.drivers, certs=pki)
    now = utcnow()
    soon = _amphora(api, status="ALLOCATED", cert_expiration=now + DAY)
    later = _amphora(api, status="ALLOCATED", cert_expiration=now + 60 * DAY)
    busy = _amphora(api, status="ALLOCATED", cert_expiration=now + DAY, cert_busy=True)

    rotated = rotate_expiring(api.deps.db, drivers, api.deps.settings.house_keeping, now)

    assert rotated == [soon]
    calls = api.drivers.calls.of("rotate_certificate")
    assert [c["amphora_id"] for c in calls] == [soon]
    with api.deps.db.read() as s:
        row = s.get(m.Amphora, soon)
        assert row is not None and not row.cert_busy
        assert row.cert_expiration is not None and row.cert_expiration > now + 20 * DAY
        assert s.get(m.Amphora, later).cert_expiration < now + 61 * DAY  # type: ignore[union-attr]
        assert s.get(m.Amphora, busy).cert_busy  # type: ignore[union-attr]


def test_spare_pool_is_filled_taken_and_refilled(tmp_path: Path) -> None:
    api = build_api(tmp_path, STATERA_HOUSE_KEEPING__SPARE_AMPHORA_POOL_SIZE="2")
    settings = api.deps.settings

    made = fill_spare_pool(api.deps.db, api.drivers, settings)
    assert len(made) == 2
    assert fill_spare_pool(api.deps.db, api.drivers, settings) == []  # pool is full
    builds = len(api.drivers.calls.of("build"))

    lb = api.make_lb()  # settles: the flow takes a spare instead of building
    with api.deps.db.read() as s:
        (amp,) = s.scalars(sa.select(m.Amphora).where(m.Amphora.load_balancer_id == lb["id"]))
        assert amp.id in made and amp.status == "ALLOCATED" and amp.role == "STANDALONE"
    assert len(api.drivers.calls.of("build")) == builds
    assert len(fill_spare_pool(api.deps.db, api.drivers, settings)) == 1


def test_sweep_removes_orphans_and_stale_claims(api: Api) -> None:
    hk = api.deps.settings.house_keeping
    now = utcnow()
    old = now - timedelta(seconds=hk.orphan_grace + 60)
    orphan = _amphora(api, status="BOOTING", updated_at=old)
    fresh = _amphora(api, status="BOOTING", updated_at=now)
    claim = _amphora(api, status="ALLOCATED", cert_busy=True, updated_at=old)

    swept = sweep(api.deps.db, api.drivers, hk, now)

    assert swept.orphan_amphorae == [orphan] and swept.stale_cert_claims == 1
    assert [c["compute_id"] for c in api.drivers.calls.of("delete")] == [orphan]
    with api.deps.db.read() as s:
        assert s.get(m.Amphora, orphan).status == "DELETED"  # type: ignore[union-attr]
        assert s.get(m.Amphora, fresh).status == "BOOTING"  # type: ignore[union-attr]
        assert not s.get(m.Amphora, claim).cert_busy  # type: ignore[union-attr]
