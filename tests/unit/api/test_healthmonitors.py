"""/v2/lbaas/healthmonitors: create with defaults, the pool/type matrix, field rules that keep
strings out of haproxy.cfg, updates (null resets), deletes, locking, quota and lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from statera.db import models as m
from tests.conftest import Api, build_api

HM = "/v2/lbaas/healthmonitors"
MISSING = "9e5c1d38-6b5e-4a43-8f0e-3e0f2f0f0f0f"


def operations(api: Api) -> int:
    with api.deps.db.read() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(m.Operation)) or 0)


def make_pool(
    api: Api, lb: dict[str, Any], protocol: str = "HTTP", listener_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"protocol": protocol, "lb_algorithm": "ROUND_ROBIN"}
    body["listener_id" if listener_id else "loadbalancer_id"] = listener_id or lb["id"]
    pool = api.post("/v2/lbaas/pools", {"pool": body})["pool"]
    api.settle()
    return pool


@pytest.fixture
def tree(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    lb = api.make_lb()
    li = api.post(
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
    )["listener"]
    api.settle()
    return lb, li, make_pool(api, lb, listener_id=li["id"])


def hm_body(pool: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2}
    body.update(fields)
    return {"healthmonitor": {k: v for k, v in body.items() if v is not ...}}


def statuses(
    api: Api, lb: dict[str, Any], li: dict[str, Any], pool: dict[str, Any]
) -> tuple[str, str, str]:
    return (
        api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"],
        api.get(f"/v2/lbaas/listeners/{li['id']}")["listener"]["provisioning_status"],
        api.get(f"/v2/lbaas/pools/{pool['id']}")["pool"]["provisioning_status"],
    )


def test_create_with_defaults_and_settle(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    hm = api.post(HM, hm_body(pool, name="probe", tags=["t"]))["healthmonitor"]
    assert hm["provisioning_status"] == "PENDING_CREATE" and hm["operating_status"] == "OFFLINE"
    assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == ("GET", "/", "200")
    assert (hm["max_retries"], hm["max_retries_down"]) == (2, 3)
    assert hm["pools"] == [{"id": pool["id"]}]
    assert (hm["http_version"], hm["domain_name"], hm["tags"]) == (None, None, ["t"])
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    with api.deps.db.read() as s:
        op = s.scalars(
            sa.select(m.Operation).where(m.Operation.kind == "create_healthmonitor")
        ).one()
        assert (op.target_type, op.target_id) == ("healthmonitor", hm["id"])
    api.settle()
    assert api.get(f"{HM}/{hm['id']}")["healthmonitor"]["provisioning_status"] == "ACTIVE"
    assert api.get(f"/v2/lbaas/pools/{pool['id']}")["pool"]["healthmonitor_id"] == hm["id"]
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3
    assert api.get(f"/v2.0/lbaas/healthmonitors/{hm['id']}")["healthmonitor"]["name"] == "probe"


def test_full_http_settings(api: Api, tree: Any) -> None:
    _, _, pool = tree
    hm = api.post(
        HM,
        hm_body(
            pool,
            type="HTTPS",
            http_method="HEAD",
            url_path="/health/check?full=1&x=%20y",
            expected_codes="200-204",
            http_version=1.1,
            domain_name="app.example.com",
            max_retries_down=10,
            delay=0,
            timeout=0,
        ),
    )["healthmonitor"]
    assert (hm["type"], hm["http_method"], hm["url_path"], hm["expected_codes"]) == (
        "HTTPS",
        "HEAD",
        "/health/check?full=1&x=%20y",
        "200-204",
    )
    assert (hm["http_version"], hm["domain_name"], hm["max_retries_down"]) == (
        1.1,
        "app.example.com",
        10,
    )


@pytest.mark.parametrize(
    ("pool_protocol", "hm_type", "ok"),
    [
        ("HTTP", "TCP", True),
        ("HTTP", "PING", True),
        ("HTTP", "TLS-HELLO", True),
        ("TCP", "HTTPS", True),
        ("PROXY", "HTTP", True),
        ("HTTP", "UDP-CONNECT", False),
        ("HTTP", "SCTP", False),
        ("TCP", "ICMP", False),
    ],
)
def test_pool_type_matrix(api: Api, pool_protocol: str, hm_type: str, ok: bool) -> None:
    lb = api.make_lb()
    pool = make_pool(api, lb, pool_protocol)
    body = hm_body(pool, type=hm_type)
    if ok:
        assert api.post(HM, body)["healthmonitor"]["type"] == hm_type
    else:
        api.post(HM, body, status=400)


BAD_MONITORS = [
    {"type": ...},
    {"delay": ...},
    {"timeout": ...},
    {"max_retries": ...},
    {"pool_id": ...},
    {"delay": -1},
    {"timeout": -1},
    {"delay": 10**9},
    {"delay": "soon"},
    {"max_retries": 0},
    {"max_retries": 11},
    {"max_retries_down": 0},
    {"max_retries_down": 11},
    {"http_method": "FETCH"},
    {"url_path": "health"},
    {"url_path": "/a b"},
    {"url_path": "/a\n"},
    {"url_path": "/a\nbind :1"},
    {"url_path": "/#frag"},
    {"url_path": '/"x'},
    {"url_path": "/%zz"},
    {"url_path": "/" + "a" * 2048},
    {"expected_codes": "20"},
    {"expected_codes": "200-"},
    {"expected_codes": "600"},
    {"expected_codes": "204-200"},
    {"expected_codes": "200,abc"},
    {"expected_codes": "099"},
    {"expected_codes": "200-202,204"},
    {"expected_codes": "200\n"},
    {"http_version": 2.0},
    {"http_version": 1.2},
    {"domain_name": "example.com"},
    {"domain_name": "example.com", "http_version": 1.0},
    {"domain_name": "bad name.com", "http_version": 1.1},
    {"domain_name": "a\nb", "http_version": 1.1},
    {"domain_name": "-bad.example", "http_version": 1.1},
    {"type": "TCP", "url_path": "/x"},
    {"type": "TCP", "http_method": "GET"},
    {"type": "PING", "expected_codes": "200"},
    {"name": "x" * 256},
    {"tags": ["a\n"]},
    {"colour": "blue"},
    {"pool_id": "not-a-uuid"},
]


@pytest.mark.parametrize("fields", BAD_MONITORS)
def test_invalid_monitor_is_refused_and_changes_nothing(
    api: Api, tree: Any, fields: dict[str, Any]
) -> None:
    lb, li, pool = tree
    before = operations(api)
    r = api.post(HM, hm_body(pool, **fields), status=400)
    assert r["faultstring"]
    assert operations(api) == before
    assert api.get(HM)["healthmonitors"] == []
    assert statuses(api, lb, li, pool) == ("ACTIVE",) * 3


def test_missing_pool_is_not_found(api: Api, tree: Any) -> None:
    api.post(HM, hm_body({"id": MISSING}), status=404)


def test_ping_can_be_disabled(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_API_SETTINGS__ALLOW_PING_HEALTH_MONITORS="false")
    pool = make_pool(a, a.make_lb())
    r = a.post(HM, hm_body(pool, type="PING"), status=400)
    assert "PING" in r["faultstring"]
    a.post(HM, hm_body(pool, type="TCP"))


def test_one_monitor_per_pool(api: Api, tree: Any) -> None:
    _, _, pool = tree
    api.post(HM, hm_body(pool))
    api.post(HM, hm_body(pool, type="TCP"), status=409)  # tree is pending
    api.settle()
    r = api.post(HM, hm_body(pool, type="TCP"), status=409)
    assert "already has" in r["faultstring"]


def test_update_null_resets_and_locking(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    hm = api.post(HM, hm_body(pool, url_path="/hc", expected_codes="202", max_retries_down=5))[
        "healthmonitor"
    ]
    path = f"{HM}/{hm['id']}"
    api.put(path, {"healthmonitor": {"delay": 9}}, status=409)
    api.delete(path, status=409)
    api.settle()
    out = api.put(
        path,
        {
            "healthmonitor": {
                "delay": 9,
                "timeout": 4,
                "max_retries": 4,
                "http_method": "POST",
                "admin_state_up": False,
                "name": "n",
                "tags": ["x"],
                "http_version": 1.1,
                "domain_name": "h.example",
            }
        },
    )["healthmonitor"]
    assert out["provisioning_status"] == "PENDING_UPDATE"
    assert (out["delay"], out["timeout"], out["max_retries"], out["http_method"]) == (
        9,
        4,
        4,
        "POST",
    )
    assert (out["admin_state_up"], out["name"], out["tags"]) == (False, "n", ["x"])
    assert (out["http_version"], out["domain_name"]) == (1.1, "h.example")
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    api.settle()
    out = api.put(
        path,
        {
            "healthmonitor": {
                "url_path": None,
                "expected_codes": None,
                "http_method": None,
                "max_retries_down": None,
                "domain_name": None,
            }
        },
    )["healthmonitor"]
    assert (out["url_path"], out["expected_codes"], out["http_method"]) == ("/", "200", "GET")
    assert (out["max_retries_down"], out["domain_name"]) == (3, None)
    api.settle()
    before = operations(api)
    for bad in (
        {"type": "TCP"},
        {"pool_id": MISSING},
        {"delay": None},
        {"timeout": None},
        {"max_retries": None},
        {"url_path": "x"},
        {"http_version": 1.0, "domain_name": "a.b"},
        {"expected_codes": "1000"},
        {"admin_state_up": None},
    ):
        api.put(path, {"healthmonitor": bad}, status=400)
    assert operations(api) == before
    shown = api.get(path)["healthmonitor"]
    assert shown["provisioning_status"] == "ACTIVE" and shown["delay"] == 9


def test_http_fields_refused_on_update_of_tcp_monitor(api: Api, tree: Any) -> None:
    _, _, pool = tree
    hm = api.post(HM, hm_body(pool, type="TCP"))["healthmonitor"]
    assert hm["http_method"] is None and hm["url_path"] is None
    api.settle()
    api.put(f"{HM}/{hm['id']}", {"healthmonitor": {"url_path": "/x"}}, status=400)
    out = api.put(f"{HM}/{hm['id']}", {"healthmonitor": {"url_path": None}})["healthmonitor"]
    assert out["url_path"] is None


def test_delete_then_gone(api: Api, tree: Any) -> None:
    lb, li, pool = tree
    hm = api.post(HM, hm_body(pool))["healthmonitor"]
    api.settle()
    api.delete(f"{HM}/{hm['id']}")
    assert api.get(f"{HM}/{hm['id']}")["healthmonitor"]["provisioning_status"] == "PENDING_DELETE"
    assert statuses(api, lb, li, pool) == ("PENDING_UPDATE",) * 3
    api.settle()
    api.get(f"{HM}/{hm['id']}", status=404)
    api.delete(f"{HM}/{hm['id']}", status=404)
    assert api.get(f"/v2/lbaas/pools/{pool['id']}")["pool"]["healthmonitor_id"] is None
    api.post(HM, hm_body(pool, type="TCP"))


def test_monitor_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_HEALTH_MONITOR_QUOTA="1")
    lb = a.make_lb()
    first, second = make_pool(a, lb), make_pool(a, lb, "TCP")
    a.post(HM, hm_body(first))
    a.settle()
    r = a.post(HM, hm_body(second, type="TCP"), status=403)
    assert r["faultstring"] == "Quota has been met for resources: health_monitor"


def test_list_filters_sort_pages_and_fields(api: Api) -> None:
    lb = api.make_lb()
    ids = {}
    for name, hm_type, retries in (("a", "HTTP", 2), ("b", "TCP", 5), ("c", "PING", 5)):
        pool = make_pool(api, lb, "HTTP")
        ids[name] = api.post(HM, hm_body(pool, name=name, type=hm_type, max_retries=retries))[
            "healthmonitor"
        ]["id"]
        api.settle()

    def names(query: str) -> list[str]:
        return [hm["name"] for hm in api.get(f"{HM}?{query}")["healthmonitors"]]

    assert names("") == ["a", "b", "c"]
    assert names("type=TCP") == ["b"]
    assert names("max_retries=5") == ["b", "c"]
    assert names("max_retries_down=3&admin_state_up=true") == ["a", "b", "c"]
    assert names("sort=name:desc") == ["c", "b", "a"]
    pool_of_a = api.get(f"{HM}/{ids['a']}")["healthmonitor"]["pools"][0]["id"]
    assert names(f"pool_id={pool_of_a}") == ["a"]
    page = api.get(f"{HM}?limit=2")
    assert len(page["healthmonitors"]) == 2
    assert page["healthmonitors_links"][0]["rel"] == "next"
    assert set(api.get(f"{HM}?fields=id,type")["healthmonitors"][0]) == {"id", "type"}
    assert len(api.get("/v2.0/lbaas/healthmonitors")["healthmonitors"]) == 3
    api.get(f"{HM}?colour=red", status=400)
