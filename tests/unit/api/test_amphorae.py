"""/v2/octavia/amphorae: the admin amphora API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from statera.db import models as m
from statera.services import users
from statera.services.common import new_id
from tests.conftest import Api, build_api

A = "/v2/octavia/amphorae"


def _amp(api: Api, **values: object) -> str:
    """An amphora row made by hand (a spare, or one in a given state)."""
    amp_id = new_id()
    with api.deps.db.write() as s:
        s.add(m.Amphora(id=amp_id, status=values.pop("status", "READY"), **values))
    return amp_id


def _lb_amphora(api: Api) -> tuple[dict[str, object], dict[str, object]]:
    lb = api.make_lb()
    amps = api.get(A, params={"loadbalancer_id": lb["id"]})["amphorae"]
    assert len(amps) == 1
    return lb, amps[0]


def _operations(api: Api, kind: str) -> list[m.Operation]:
    with api.deps.db.read() as s:
        return list(s.scalars(sa.select(m.Operation).where(m.Operation.kind == kind)))


def _lb_status(api: Api, lb_id: object) -> str:
    return str(api.get(f"/v2/lbaas/loadbalancers/{lb_id}")["loadbalancer"]["provisioning_status"])


@pytest.fixture
def basic_api(tmp_path: Path) -> Iterator[Api]:
    a = build_api(tmp_path, STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    yield a
    a.client.close()
    a.deps.db.dispose()


def test_list_and_show(api: Api) -> None:
    lb, amp = _lb_amphora(api)
    assert amp["loadbalancer_id"] == lb["id"]
    assert set(amp) == {
        "id",
        "loadbalancer_id",
        "compute_id",
        "lb_network_ip",
        "vrrp_ip",
        "ha_ip",
        "vrrp_port_id",
        "ha_port_id",
        "cert_expiration",
        "cert_busy",
        "role",
        "status",
        "vrrp_interface",
        "vrrp_id",
        "vrrp_priority",
        "cached_zone",
        "created_at",
        "updated_at",
        "image_id",
        "compute_flavor",
    }
    assert api.get(f"{A}/{amp['id']}")["amphora"] == amp
    assert api.get(f"{A}/{amp['id']}", params={"fields": "id,status"})["amphora"] == {
        "id": amp["id"],
        "status": amp["status"],
    }
    spare = _amp(api, status="READY")
    assert {a["id"] for a in api.get(A)["amphorae"]} == {amp["id"], spare}
    assert [a["id"] for a in api.get(A, params={"status": "READY"})["amphorae"]] == [spare]
    page = api.get(A, params={"limit": 1})
    assert len(page["amphorae"]) == 1 and page["amphorae_links"][0]["rel"] == "next"
    assert api.client.get(A, params={"colour": "red"}).status_code == 400


def test_deleted_amphorae_are_not_found(api: Api) -> None:
    gone = _amp(api, status="DELETED")
    assert gone not in {a["id"] for a in api.get(A)["amphorae"]}
    for method, path in (
        ("GET", f"{A}/{gone}"),
        ("GET", f"{A}/{gone}/stats"),
        ("PUT", f"{A}/{gone}/config"),
        ("PUT", f"{A}/{gone}/failover"),
        ("DELETE", f"{A}/{gone}"),
    ):
        r = api.client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert r.json()["faultstring"] == f"Amphora {gone} not found."


def test_stats_one_entry_per_listener(api: Api) -> None:
    lb, amp = _lb_amphora(api)
    assert api.get(f"{A}/{amp['id']}/stats") == {"amphora_stats": []}
    listeners = []
    for port in (80, 81):
        listener = api.post(
            "/v2/lbaas/listeners",
            {"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": port}},
        )
        api.settle()
        listeners.append(listener["listener"]["id"])
    with api.deps.db.write() as s:
        s.add(
            m.ListenerStatistics(
                listener_id=listeners[0],
                amphora_id=amp["id"],
                bytes_in=10,
                bytes_out=20,
                active_connections=1,
                total_connections=3,
                request_errors=2,
            )
        )
    stats = api.get(f"{A}/{amp['id']}/stats")["amphora_stats"]
    assert stats == [
        {
            "id": amp["id"],
            "listener_id": listeners[0],
            "loadbalancer_id": lb["id"],
            "active_connections": 1,
            "bytes_in": 10,
            "bytes_out": 20,
            "request_errors": 2,
            "total_connections": 3,
        },
        {
            "id": amp["id"],
            "listener_id": listeners[1],
            "loadbalancer_id": lb["id"],
            "active_connections": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "request_errors": 0,
            "total_connections": 0,
        },
    ]
    assert api.get(f"{A}/{_amp(api)}/stats") == {"amphora_stats": []}


def test_config_enqueues_an_operation(api: Api) -> None:
    lb, amp = _lb_amphora(api)
    r = api.client.put(f"{A}/{amp['id']}/config")
    assert (r.status_code, r.content) == (202, b"")
    [op] = _operations(api, "update_amphora_config")
    assert (op.target_type, op.target_id, op.load_balancer_id) == ("amphora", amp["id"], lb["id"])
    assert _lb_status(api, lb["id"]) == "ACTIVE"
    api.settle()


def test_failover_marks_the_load_balancer(api: Api) -> None:
    lb, amp = _lb_amphora(api)
    r = api.client.put(f"{A}/{amp['id']}/failover")
    assert (r.status_code, r.content) == (202, b"")
    assert _lb_status(api, lb["id"]) == "PENDING_UPDATE"
    [op] = _operations(api, "failover_amphora")
    assert (op.target_id, op.load_balancer_id) == (amp["id"], lb["id"])
    # One change at a time per load balancer.
    r = api.client.put(f"{A}/{amp['id']}/failover")
    assert r.status_code == 409
    assert (
        r.json()["faultstring"] == f"Load Balancer {lb['id']} is immutable and cannot be updated."
    )
    api.settle()
    assert _lb_status(api, lb["id"]) == "ACTIVE"


def test_failover_from_error_and_of_a_spare(api: Api) -> None:
    lb, amp = _lb_amphora(api)
    with api.deps.db.write() as s:
        s.get(m.LoadBalancer, lb["id"]).provisioning_status = "ERROR"
    assert api.client.put(f"{A}/{amp['id']}/failover").status_code == 202
    assert _lb_status(api, lb["id"]) == "PENDING_UPDATE"
    spare = _amp(api)
    assert api.client.put(f"{A}/{spare}/failover").status_code == 202
    ops = _operations(api, "failover_amphora")
    assert [op.load_balancer_id for op in ops if op.target_id == spare] == [None]


def test_delete_only_in_error(api: Api) -> None:
    _lb, amp = _lb_amphora(api)
    r = api.client.delete(f"{A}/{amp['id']}")
    assert r.status_code == 409
    assert r.json()["faultstring"] == f"Amphora {amp['id']} is immutable and cannot be updated."
    broken = _amp(api, status="ERROR")
    assert api.client.delete(f"{A}/{broken}").status_code == 204
    assert api.get(f"{A}/{broken}")["amphora"]["status"] == "PENDING_DELETE"
    [op] = _operations(api, "delete_amphora")
    assert (op.target_type, op.target_id, op.load_balancer_id) == ("amphora", broken, None)
    assert api.client.delete(f"{A}/{broken}").status_code == 409


def test_non_admins_are_refused(basic_api: Api) -> None:
    users.add_user(
        basic_api.deps.db, "carol", "pw-c", "pc", ["member", "load-balancer_global_observer"]
    )
    users.add_user(basic_api.deps.db, "root", "pw-r", "pr", ["load-balancer_admin"])
    carol = {"Authorization": "Basic " + base64.b64encode(b"carol:pw-c").decode()}
    root = {"Authorization": "Basic " + base64.b64encode(b"root:pw-r").decode()}
    amp = _amp(basic_api, status="ERROR")
    c = basic_api.client
    for method, path in (
        ("GET", A),
        ("GET", f"{A}/{amp}"),
        ("GET", f"{A}/{amp}/stats"),
        ("PUT", f"{A}/{amp}/config"),
        ("PUT", f"{A}/{amp}/failover"),
        ("DELETE", f"{A}/{amp}"),
    ):
        assert c.request(method, path, headers=carol).status_code == 403, (method, path)
    assert c.get(f"{A}/{amp}", headers=root).status_code == 200
    assert c.delete(f"{A}/{amp}", headers=root).status_code == 204
    assert c.get(A).status_code == 401
