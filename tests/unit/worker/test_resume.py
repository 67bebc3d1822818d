"""A worker that dies at any step boundary leaves an operation the next worker finishes
(CP-2 for the create, update, delete and failover flows, with the noop drivers)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from statera.db import models as m
from statera.worker import engine as engine_mod
from statera.worker.runner import Worker
from tests.conftest import Api, build_api


class WorkerDied(BaseException):
    """Stands for kill -9: nothing after it runs, nothing is reverted or released."""


def _crash_after_saves(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    counter = itertools.count(1)
    real = engine_mod.Fence.save

    def save(self, session, **values):  # type: ignore[no-untyped-def]
        real(self, session, **values)
        if next(counter) == n:
            session.commit()
            raise WorkerDied()

    monkeypatch.setattr(engine_mod.Fence, "save", save)


def _expire_leases(api: Api) -> None:
    """Let the dead worker's lease run out (instead of waiting for it)."""
    with api.deps.db.write() as s:
        s.execute(sa.update(m.Operation).where(m.Operation.state == "RUNNING")
                  .values(lease_expires_at=m.Operation.created_at))


def _states(api: Api) -> list[str]:
    with api.deps.db.read() as s:
        return list(s.scalars(sa.select(m.Operation.state)))


def _run_with_crash(api: Api, monkeypatch: pytest.MonkeyPatch, n: int) -> bool:
    """Run pending work, dying after the n-th progress save; True if it died."""
    _crash_after_saves(monkeypatch, n)
    try:
        api.settle()
    except WorkerDied:
        monkeypatch.undo()
        return True
    monkeypatch.undo()
    return False


Scenario = Callable[[Api], str]


def _create(api: Api) -> str:
    return api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": api.subnet_id, "name": "x"}})["loadbalancer"]["id"]


def _update(api: Api) -> str:
    lb = api.make_lb()
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "y"}})
    return str(lb["id"])


def _delete(api: Api) -> str:
    lb = api.make_lb()
    api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    return str(lb["id"])


def _failover(api: Api) -> str:
    lb = api.make_lb()
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
    return str(lb["id"])


@pytest.mark.parametrize("scenario,final", [
    (_create, "ACTIVE"), (_update, "ACTIVE"), (_delete, None), (_failover, "ACTIVE")])
def test_every_step_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             scenario: Scenario, final: str | None) -> None:
    for n in itertools.count(1):
        api = build_api(tmp_path / f"{scenario.__name__}-{n}")
        lb_id = scenario(api)
        died = _run_with_crash(api, monkeypatch, n)
        if died:
            _expire_leases(api)
            Worker(api.deps, api.drivers, name="second").run_until_idle()
        assert _states(api)[-1] == "SUCCEEDED", (n, _states(api))
        status = None
        with api.deps.db.read() as s:
            lb = s.get(m.LoadBalancer, lb_id)
            status = lb.provisioning_status if lb else None
            amps = s.scalars(sa.select(m.Amphora).where(
                m.Amphora.load_balancer_id == lb_id, m.Amphora.status != "DELETED")).all()
        if final is None:
            assert status == "DELETED"
            assert amps == []
        else:
            assert status == final
            assert [a.status for a in amps] == ["ALLOCATED"]
        api.deps.db.dispose()
        if not died:
            break
        assert n < 40
