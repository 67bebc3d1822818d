"""/v2/lbaas/quotas: defaults, per-project limits, both key spellings, enforcement."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statera.services import users
from tests.conftest import Api, build_api

Q = "/v2/lbaas/quotas"
RESOURCES = ("load_balancer", "listener", "member", "pool", "health_monitor", "l7policy", "l7rule")


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[object]:
    made: list[Api] = []

    def make(**env: str) -> Api:
        made.append(build_api(tmp_path, **env))
        return made[-1]

    yield make
    for a in made:
        a.client.close()
        a.deps.db.dispose()


def test_defaults_come_from_config(make_api: Any) -> None:
    a = make_api(STATERA_QUOTAS__DEFAULT_POOL_QUOTA="7")
    quota = a.get(f"{Q}/defaults")["quota"]
    assert quota["pool"] == 7
    assert quota["load_balancer"] == quota["loadbalancer"] == -1
    assert quota["health_monitor"] == quota["healthmonitor"] == -1
    assert "project_id" not in quota
    assert a.get(f"{Q}/p9/default")["quota"] == quota


def test_unset_project_reports_defaults(api: Api) -> None:
    quota = api.get(f"{Q}/p2")["quota"]
    assert all(quota[r] == -1 for r in RESOURCES)


def test_put_accepts_both_spellings_and_returns_effective_quota(api: Api) -> None:
    quota = api.put(
        f"{Q}/p2", {"quota": {"loadbalancer": 5, "health_monitor": 3, "member": 0}}, status=202
    )["quota"]
    assert quota["load_balancer"] == quota["loadbalancer"] == 5
    assert quota["health_monitor"] == quota["healthmonitor"] == 3
    assert quota["member"] == 0
    assert quota["listener"] == -1
    # A later PUT changes only what it names; null goes back to the default.
    quota = api.put(f"{Q}/p2", {"quota": {"load_balancer": 6, "member": None}}, status=202)["quota"]
    assert quota["load_balancer"] == 6
    assert quota["health_monitor"] == 3
    assert quota["member"] == -1
    assert api.get(f"{Q}/p2")["quota"] == quota


def test_put_same_value_in_both_spellings_is_fine(api: Api) -> None:
    quota = api.put(f"{Q}/p2", {"quota": {"loadbalancer": 4, "load_balancer": 4}}, status=202)[
        "quota"
    ]
    assert quota["load_balancer"] == 4


def test_put_refuses_bad_values(api: Api) -> None:
    for body in (
        {"loadbalancer": -2},
        {"pool": 2_000_000_001},
        {"pool": "many"},
        {"pool": 1.5},
        {"pool": True},
        {"widgets": 1},
        {"loadbalancer": 1, "load_balancer": 2},
        {"healthmonitor": 1, "health_monitor": 2},
    ):
        r = api.client.put(f"{Q}/p2", json={"quota": body}, headers=api.headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["faultcode"] == "Client"
    r = api.client.put(f"{Q}/p2", json={"loadbalancer": 1}, headers=api.headers)
    assert r.status_code == 400
    assert (
        api.put(f"{Q}/p2", {"quota": {"pool": 2_000_000_000}}, status=202)["quota"]["pool"]
        == 2_000_000_000
    )


def test_list_shows_projects_with_quotas(api: Api) -> None:
    assert api.get(Q) == {"quotas": [], "quotas_links": []}
    api.put(f"{Q}/p2", {"quota": {"pool": 3}}, status=202)
    api.put(f"{Q}/p3", {"quota": {"listener": 4}}, status=202)
    quotas = api.get(Q)["quotas"]
    assert [q["project_id"] for q in quotas] == ["p2", "p3"]
    assert quotas[0]["pool"] == 3 and quotas[0]["listener"] == -1
    assert quotas[0]["loadbalancer"] == -1
    only = api.get(Q, params={"project_id": "p3"})["quotas"]
    assert [q["project_id"] for q in only] == ["p3"]
    api.get(Q, status=400, params={"colour": "red"})


def test_delete_resets_to_defaults(api: Api) -> None:
    api.put(f"{Q}/p2", {"quota": {"pool": 3, "loadbalancer": 1}}, status=202)
    api.delete(f"{Q}/p2", status=202)
    quota = api.get(f"{Q}/p2")["quota"]
    assert all(quota[r] == -1 for r in RESOURCES)
    # Nothing set: still fine.
    api.delete(f"{Q}/never-set", status=202)


def test_load_balancer_quota_is_enforced(api: Api) -> None:
    api.put(f"{Q}/p1", {"quota": {"load_balancer": 1}}, status=202)
    api.make_lb()
    body = {"loadbalancer": {"vip_subnet_id": api.subnet_id}}
    r = api.client.post("/v2/lbaas/loadbalancers", json=body, headers=api.headers)
    assert r.status_code == 403
    assert r.json()["faultstring"] == "Quota has been met for resources: load_balancer"
    api.delete(f"{Q}/p1", status=202)
    api.post("/v2/lbaas/loadbalancers", body)


def test_rows_made_only_for_locking_count_as_defaults(api: Api) -> None:
    from statera.db import models as m

    with api.deps.db.write() as s:
        s.add(m.Quotas(project_id="p4"))
    assert all(api.get(f"{Q}/p4")["quota"][r] == -1 for r in RESOURCES)
    listed = api.get(Q)["quotas"]
    assert listed[0]["project_id"] == "p4" and listed[0]["pool"] == -1


def test_rbac_readers_see_own_quota_only_admins_write(make_api: Any) -> None:
    a = make_api(STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    users.add_user(a.deps.db, "alice", "pw-a", "pa", ["member"])
    users.add_user(a.deps.db, "quota", "pw-q", "px", ["load-balancer_quota_admin"])
    alice, quota_admin = _basic("alice", "pw-a"), _basic("quota", "pw-q")
    c = a.client
    assert c.get(f"{Q}/pa", headers=alice).status_code == 200
    assert c.get(f"{Q}/pb", headers=alice).status_code == 403
    assert c.get(f"{Q}/defaults", headers=alice).status_code == 200
    assert c.put(f"{Q}/pa", json={"quota": {"pool": 1}}, headers=alice).status_code == 403
    assert c.delete(f"{Q}/pa", headers=alice).status_code == 403
    assert c.put(f"{Q}/pb", json={"quota": {"pool": 1}}, headers=quota_admin).status_code == 202
    assert c.put(f"{Q}/pa", json={"quota": {"pool": 2}}, headers=quota_admin).status_code == 202
    # A member lists only its own project, and may not ask for another.
    listed = c.get(Q, headers=alice).json()["quotas"]
    assert [q["project_id"] for q in listed] == ["pa"]
    assert c.get(Q, headers=alice, params={"project_id": "pb"}).status_code == 403
    assert len(c.get(Q, headers=quota_admin).json()["quotas"]) == 2
    assert c.get(Q).status_code == 401
