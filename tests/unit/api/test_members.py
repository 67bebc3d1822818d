"""/v2/lbaas/pools/{pool_id}/members: create, read, update, delete, quota, lists and the batch
update (PUT on the collection, with and without additive_only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from statera.db import models as m
from tests.conftest import Api, build_api

LB = "/v2/lbaas/loadbalancers"
MISSING = "9e5c1d38-6b5e-4a43-8f0e-3e0f2f0f0f0f"


def operations(api: Api) -> list[m.Operation]:
    with api.deps.db.read() as s:
        return list(s.scalars(sa.select(m.Operation).order_by(m.Operation.created_at)))


def make_tree(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    lb = api.make_lb()
    li = api.post(
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
    )["listener"]
    api.settle()
    pool = api.post(
        "/v2/lbaas/pools",
        {"pool": {"listener_id": li["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
    )["pool"]
    api.settle()
    return lb, li, pool


@pytest.fixture
def tree(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return make_tree(api)


def statuses(
    api: Api, lb: dict[str, Any], li: dict[str, Any], pool: dict[str, Any]
) -> tuple[str, str, str]:
    return (
        api.get(f"{LB}/{lb['id']}")["loadbalancer"]["provisioning_status"],
        api.get(f"/v2/lbaas/listeners/{li['id']}")["listener"]["provisioning_status"],
        api.get(f"/v2/lbaas/pools/{pool['id']}")["pool"]["provisioning_status"],
    )


def members_path(pool: dict[str, Any]) -> str:
    return f"/v2/lbaas/pools/{pool['id']}/members"


def test_create_show_and_settle(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    mb = api.post(
        path,
        {
            "member": {
                "address": "10.0.0.10",
                "protocol_port": 8080,
                "name": "web1",
                "tags": ["blue"],
            }
        },
    )["member"]
    assert mb["provisioning_status"] == "PENDING_CREATE"
    assert mb["operating_status"] == "NO_MONITOR"
    assert (mb["address"], mb["protocol_port"], mb["weight"], mb["backup"]) == (
        "10.0.0.10",
        8080,
        1,
        False,
    )
    assert (mb["admin_state_up"], mb["vnic_type"], mb["subnet_id"]) == (True, "normal", None)
    assert mb["monitor_address"] is None and mb["monitor_port"] is None
    assert mb["tags"] == ["blue"] and mb["project_id"] == "p1"
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    ops = [op for op in operations(api) if op.kind == "create_member"]
    assert [(op.target_type, op.target_id) for op in ops] == [("member", mb["id"])]
    api.settle()
    assert api.get(f"{path}/{mb['id']}")["member"]["provisioning_status"] == "ACTIVE"
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3
    assert api.get(f"/v2/lbaas/pools/{pool['id']}")["pool"]["members"] == [{"id": mb["id"]}]
    assert api.get(f"/v2.0/lbaas/pools/{pool['id']}/members/{mb['id']}")["member"]["id"] == mb["id"]


def test_all_fields_and_ipv6_and_subnet(api: Api, tree: Any) -> None:
    _, _, pool = tree
    mb = api.post(
        members_path(pool),
        {
            "member": {
                "address": "2001:DB8::5",
                "protocol_port": 443,
                "weight": 0,
                "backup": True,
                "admin_state_up": False,
                "monitor_address": "10.0.0.99",
                "monitor_port": 9000,
                "subnet_id": api.subnet_id,
            }
        },
    )["member"]
    assert mb["address"] == "2001:db8::5"
    assert (mb["weight"], mb["backup"], mb["admin_state_up"]) == (0, True, False)
    assert (mb["monitor_address"], mb["monitor_port"]) == ("10.0.0.99", 9000)
    assert mb["subnet_id"] == api.subnet_id


def test_members_of_monitored_pool_start_offline(api: Api, tree: Any) -> None:
    _, _, pool = tree
    api.post(
        "/v2/lbaas/healthmonitors",
        {
            "healthmonitor": {
                "pool_id": pool["id"],
                "type": "TCP",
                "delay": 3,
                "timeout": 2,
                "max_retries": 2,
            }
        },
    )
    api.settle()
    mb = api.post(members_path(pool), {"member": {"address": "10.0.0.10", "protocol_port": 80}})[
        "member"
    ]
    assert mb["operating_status"] == "OFFLINE"


BAD_MEMBERS = [
    {"address": "10.0.0.300"},
    {"address": "not-an-ip"},
    {"address": "169.254.169.254"},
    {"address": "127.0.0.1"},
    {"address": "0.0.0.0"},
    {"address": "224.0.0.1"},
    {"address": None},
    {"protocol_port": 0},
    {"protocol_port": 65536},
    {"weight": 257},
    {"weight": -1},
    {"monitor_address": "nope"},
    {"monitor_address": "169.254.169.254"},
    {"monitor_port": 0},
    {"subnet_id": MISSING},
    {"subnet_id": "not-a-uuid"},
    {"request_sriov": True},
    {"name": "bad\nname"},
    {"pool_id": MISSING},
]


@pytest.mark.parametrize("fields", BAD_MEMBERS)
def test_invalid_member_is_refused_and_changes_nothing(
    api: Api, tree: Any, fields: dict[str, Any]
) -> None:
    lb, li, pool = tree
    before = len(operations(api))
    body = {"address": "10.0.0.10", "protocol_port": 80, **fields}
    r = api.post(members_path(pool), {"member": body}, status=400)
    assert r["faultstring"]
    assert len(operations(api)) == before
    assert api.get(members_path(pool))["members"] == []
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3


def test_duplicate_member_conflicts(api: Api, tree: Any) -> None:
    _, _, pool = tree
    body = {"member": {"address": "10.0.0.10", "protocol_port": 80}}
    api.post(members_path(pool), body)
    api.settle()
    r = api.post(
        members_path(pool),
        {"member": {"address": "10.0.0.10", "protocol_port": 80, "weight": 5}},
        status=409,
    )
    assert "10.0.0.10" in r["faultstring"]
    api.post(members_path(pool), {"member": {"address": "10.0.0.10", "protocol_port": 81}})


def test_update_and_locking(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    mb = api.post(path, {"member": {"address": "10.0.0.10", "protocol_port": 80}})["member"]
    api.put(f"{path}/{mb['id']}", {"member": {"weight": 3}}, status=409)
    api.delete(f"{path}/{mb['id']}", status=409)
    api.settle()
    out = api.put(
        f"{path}/{mb['id']}",
        {
            "member": {
                "weight": 0,
                "admin_state_up": False,
                "backup": True,
                "name": "drain",
                "monitor_address": "10.0.0.11",
                "monitor_port": 8081,
                "tags": ["a"],
            }
        },
    )["member"]
    assert out["provisioning_status"] == "PENDING_UPDATE"
    assert (out["weight"], out["admin_state_up"], out["backup"], out["name"]) == (
        0,
        False,
        True,
        "drain",
    )
    assert (out["monitor_address"], out["monitor_port"], out["tags"]) == ("10.0.0.11", 8081, ["a"])
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    api.settle()
    out = api.put(
        f"{path}/{mb['id']}",
        {"member": {"weight": None, "monitor_address": None, "monitor_port": None}},
    )["member"]
    assert (out["weight"], out["monitor_address"], out["monitor_port"]) == (1, None, None)
    api.settle()
    for bad in (
        {"address": "10.0.0.12"},
        {"protocol_port": 81},
        {"weight": 300},
        {"admin_state_up": None},
        {"monitor_address": "x"},
        {"subnet_id": MISSING},
    ):
        api.put(f"{path}/{mb['id']}", {"member": bad}, status=400)
    assert api.get(f"{path}/{mb['id']}")["member"]["provisioning_status"] == "ACTIVE"


def test_delete_and_not_found(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    mb = api.post(path, {"member": {"address": "10.0.0.10", "protocol_port": 80}})["member"]
    api.settle()
    api.delete(f"{path}/{mb['id']}")
    assert api.get(f"{path}/{mb['id']}")["member"]["provisioning_status"] == "PENDING_DELETE"
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    api.settle()
    api.get(f"{path}/{mb['id']}", status=404)
    api.delete(f"{path}/{mb['id']}", status=404)
    api.get(f"/v2/lbaas/pools/{MISSING}/members", status=404)
    api.post(
        f"/v2/lbaas/pools/{MISSING}/members",
        {"member": {"address": "10.0.0.10", "protocol_port": 80}},
        status=404,
    )
    # A member is only found under its own pool.
    other = api.post(
        "/v2/lbaas/pools",
        {"pool": {"loadbalancer_id": lb["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}},
    )["pool"]
    api.settle()
    kept = api.post(path, {"member": {"address": "10.0.0.10", "protocol_port": 80}})["member"]
    api.settle()
    api.get(f"{members_path(other)}/{kept['id']}", status=404)


def test_member_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_MEMBER_QUOTA="2")
    _, _, pool = make_tree(a)
    path = members_path(pool)
    for i in (1, 2):
        a.post(path, {"member": {"address": f"10.0.0.{i}", "protocol_port": 80}})
        a.settle()
    r = a.post(path, {"member": {"address": "10.0.0.3", "protocol_port": 80}}, status=403)
    assert r["faultstring"] == "Quota has been met for resources: member"
    # A batch may swap members as long as the count stays within the limit.
    a.put(
        path,
        {
            "members": [
                {"address": "10.0.0.1", "protocol_port": 80},
                {"address": "10.0.0.3", "protocol_port": 80},
                {"address": "10.0.0.4", "protocol_port": 80},
            ]
        },
        status=403,
    )
    a.put(
        path,
        {
            "members": [
                {"address": "10.0.0.3", "protocol_port": 80},
                {"address": "10.0.0.4", "protocol_port": 80},
            ]
        },
        status=202,
    )
    a.settle()
    a.put(
        f"{path}?additive_only=true",
        {"members": [{"address": "10.0.0.5", "protocol_port": 80}]},
        status=403,
    )
    got = sorted(mb["address"] for mb in a.get(path)["members"])
    assert got == ["10.0.0.3", "10.0.0.4"]


def test_batch_creates_updates_and_deletes_in_one_operation(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    keep = api.post(path, {"member": {"address": "10.0.0.1", "protocol_port": 80}})["member"]
    api.settle()
    same = api.post(path, {"member": {"address": "10.0.0.2", "protocol_port": 80, "weight": 5}})[
        "member"
    ]
    api.settle()
    drop = api.post(path, {"member": {"address": "10.0.0.3", "protocol_port": 80}})["member"]
    api.settle()
    before = len(operations(api))
    api.put(
        path,
        {
            "members": [
                {"address": "10.0.0.1", "protocol_port": 80, "weight": 7, "name": "kept"},
                {"address": "10.0.0.2", "protocol_port": 80, "weight": 5},
                {"address": "10.0.0.4", "protocol_port": 80, "backup": True},
            ]
        },
        status=202,
    )
    ops = operations(api)[before:]
    assert [op.kind for op in ops] == ["batch_update_members"]
    op = ops[0]
    assert (op.target_type, op.target_id, op.load_balancer_id) == ("pool", pool["id"], lb["id"])
    assert op.payload["updated"] == [keep["id"]]
    assert op.payload["deleted"] == [drop["id"]]
    created = op.payload["created"]
    assert isinstance(created, list) and len(created) == 1
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    by_addr = {mb["address"]: mb for mb in api.get(path)["members"]}
    assert by_addr["10.0.0.1"]["provisioning_status"] == "PENDING_UPDATE"
    assert (by_addr["10.0.0.1"]["weight"], by_addr["10.0.0.1"]["name"]) == (7, "kept")
    assert by_addr["10.0.0.2"]["provisioning_status"] == "ACTIVE"  # listed unchanged
    assert by_addr["10.0.0.3"]["provisioning_status"] == "PENDING_DELETE"
    assert by_addr["10.0.0.4"]["provisioning_status"] == "PENDING_CREATE"
    assert by_addr["10.0.0.4"]["backup"] is True
    api.put(path, {"members": []}, status=409)
    api.settle()
    got = {mb["address"]: mb["provisioning_status"] for mb in api.get(path)["members"]}
    assert got == {"10.0.0.1": "ACTIVE", "10.0.0.2": "ACTIVE", "10.0.0.4": "ACTIVE"}
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3
    assert same["id"] in {mb["id"] for mb in api.get(path)["members"]}


def test_batch_additive_only_keeps_unlisted(api: Api, tree: Any) -> None:
    _, _, pool = tree
    path = members_path(pool)
    api.post(path, {"member": {"address": "10.0.0.1", "protocol_port": 80}})
    api.settle()
    api.put(
        f"{path}?additive_only=true",
        {"members": [{"address": "10.0.0.2", "protocol_port": 80}]},
        status=202,
    )
    op = operations(api)[-1]
    assert op.kind == "batch_update_members" and op.payload["deleted"] == []
    api.settle()
    assert sorted(mb["address"] for mb in api.get(path)["members"]) == ["10.0.0.1", "10.0.0.2"]
    api.put(f"{path}?additive_only=maybe", {"members": []}, status=400)


def test_batch_no_op_changes_nothing(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    api.put(path, {"members": []}, status=202)
    api.post(
        path,
        {"member": {"address": "10.0.0.1", "protocol_port": 80, "weight": 3, "tags": ["a", "b"]}},
    )
    api.settle()
    before = len(operations(api))
    api.put(
        path,
        {
            "members": [
                {"address": "10.0.0.1", "protocol_port": 80, "weight": 3, "tags": ["b", "a"]}
            ]
        },
        status=202,
    )
    api.put(f"{path}?additive_only=true", {"members": []}, status=202)
    assert len(operations(api)) == before
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3
    assert api.get(path)["members"][0]["provisioning_status"] == "ACTIVE"


@pytest.mark.parametrize(
    "members",
    [
        [
            {"address": "10.0.0.1", "protocol_port": 80},
            {"address": "10.0.0.1", "protocol_port": 80},
        ],
        [
            {"address": "2001:db8::1", "protocol_port": 80},
            {"address": "2001:DB8:0::1", "protocol_port": 80},
        ],
        [{"address": "169.254.169.254", "protocol_port": 80}],
        [{"address": "10.0.0.1"}],
        [{"address": "10.0.0.1", "protocol_port": 80, "weight": 1000}],
        [{"address": "10.0.0.1", "protocol_port": 80, "subnet_id": MISSING}],
    ],
)
def test_batch_invalid_changes_nothing(api: Api, tree: Any, members: list[Any]) -> None:
    lb, li, pool = tree
    path = members_path(pool)
    api.post(path, {"member": {"address": "10.0.0.9", "protocol_port": 80}})
    api.settle()
    before = len(operations(api))
    api.put(path, {"members": members}, status=400)
    assert len(operations(api)) == before
    assert [mb["address"] for mb in api.get(path)["members"]] == ["10.0.0.9"]
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3


def test_batch_on_missing_pool_or_pending_tree(api: Api, tree: Any) -> None:
    _, _, pool = tree
    api.put(f"/v2/lbaas/pools/{MISSING}/members", {"members": []}, status=404)
    api.post(members_path(pool), {"member": {"address": "10.0.0.1", "protocol_port": 80}})
    api.put(members_path(pool), {"members": []}, status=409)


def test_list_filters_sort_pages_and_fields(api: Api, tree: Any) -> None:
    _, _, pool = tree
    path = members_path(pool)
    for i, weight in ((1, 5), (2, 1), (3, 5)):
        api.post(
            path,
            {
                "member": {
                    "address": f"10.0.0.{i}",
                    "protocol_port": 80 + i,
                    "weight": weight,
                    "admin_state_up": i != 3,
                    "tags": ["odd"] if i % 2 else [],
                }
            },
        )
        api.settle()

    def addrs(query: str) -> list[str]:
        return [mb["address"] for mb in api.get(f"{path}?{query}")["members"]]

    assert addrs("") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert addrs("weight=5") == ["10.0.0.1", "10.0.0.3"]
    assert addrs("address=10.0.0.2") == ["10.0.0.2"]
    assert addrs("protocol_port=83") == ["10.0.0.3"]
    assert addrs("admin_state_up=false") == ["10.0.0.3"]
    assert addrs("tags=odd") == ["10.0.0.1", "10.0.0.3"]
    assert addrs("sort=protocol_port:desc") == ["10.0.0.3", "10.0.0.2", "10.0.0.1"]
    page = api.get(f"{path}?limit=1")
    assert len(page["members"]) == 1 and page["members_links"][0]["rel"] == "next"
    assert set(api.get(f"{path}?fields=id,address")["members"][0]) == {"id", "address"}
    assert len(api.get(f"/v2.0/lbaas/pools/{pool['id']}/members")["members"]) == 3
    api.get(f"{path}?colour=red", status=400)
