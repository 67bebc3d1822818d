"""Load balancer flows with the noop drivers, end to end through the API."""

from __future__ import annotations

import sqlalchemy as sa

from statera.db import models as m
from tests.conftest import Api


def _ops(api: Api) -> list[m.Operation]:
    with api.deps.db.read() as s:
        return list(s.scalars(sa.select(m.Operation).order_by(m.Operation.created_at)))


def test_create_reaches_active_with_one_amphora(api: Api) -> None:
    lb = api.make_lb()
    shown = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
    assert shown["provisioning_status"] == "ACTIVE"
    assert shown["operating_status"] == "OFFLINE"
    with api.deps.db.read() as s:
        amps = s.scalars(sa.select(m.Amphora).where(m.Amphora.load_balancer_id == lb["id"])).all()
    assert [(a.status, a.role) for a in amps] == [("ALLOCATED", "STANDALONE")]
    assert [op.state for op in _ops(api)] == ["SUCCEEDED"]
    assert api.drivers.calls.of("build")[0]["amphora_id"] == amps[0].id


def test_active_standby_builds_master_and_backup(tmp_path) -> None:
    from tests.conftest import build_api

    api = build_api(tmp_path, STATERA_CONTROLLER_WORKER__LOADBALANCER_TOPOLOGY="ACTIVE_STANDBY")
    lb = api.make_lb()
    with api.deps.db.read() as s:
        roles = sorted(a.role for a in s.scalars(sa.select(m.Amphora).where(
            m.Amphora.load_balancer_id == lb["id"])))
    assert roles == ["BACKUP", "MASTER"]


def test_update_then_delete(api: Api) -> None:
    lb = api.make_lb()
    body = api.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                   {"loadbalancer": {"name": "renamed", "admin_state_up": False}})
    assert body["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}, status=409)
    api.settle()
    shown = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
    assert (shown["name"], shown["admin_state_up"], shown["provisioning_status"]) == (
        "renamed", False, "ACTIVE")
    api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    api.settle()
    api.get(f"/v2/lbaas/loadbalancers/{lb['id']}", status=404)
    with api.deps.db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.Port)) == 0
        amp_status = s.scalars(sa.select(m.Amphora.status)).all()
    assert amp_status == ["DELETED"]
    assert len(api.drivers.calls.of("delete")) == 1


def test_failover_replaces_the_amphora(api: Api) -> None:
    lb = api.make_lb()
    with api.deps.db.read() as s:
        old = s.scalars(sa.select(m.Amphora.id)).one()
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
    assert api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"][
        "provisioning_status"] == "PENDING_UPDATE"
    api.settle()
    with api.deps.db.read() as s:
        amps = {a.id: a.status for a in s.scalars(sa.select(m.Amphora))}
    assert amps.pop(old) == "DELETED"
    assert list(amps.values()) == ["ALLOCATED"]
    assert api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"][
        "provisioning_status"] == "ACTIVE"


def test_vip_addresses_are_never_shared(api: Api) -> None:
    vips = {api.make_lb()["vip_address"] for _ in range(5)}
    assert len(vips) == 5


def test_a_failing_driver_ends_in_error_not_pending(api: Api) -> None:
    from statera.domain.errors import StepFailed

    def broken(request):  # type: ignore[no-untyped-def]
        raise StepFailed("no capacity")

    api.drivers.compute.build = broken  # type: ignore[method-assign]
    lb = api.post("/v2/lbaas/loadbalancers",
                  {"loadbalancer": {"vip_subnet_id": api.subnet_id}})["loadbalancer"]
    api.settle()
    shown = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]
    assert shown["provisioning_status"] == "ERROR"
    (op,) = _ops(api)
    assert op.state == "FAILED" and "no capacity" in (op.error or "")
    # An ERROR load balancer can be deleted.
    api.drivers.compute.build = type(api.drivers.compute).build.__get__(api.drivers.compute)
    api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    api.settle()
    api.get(f"/v2/lbaas/loadbalancers/{lb['id']}", status=404)
