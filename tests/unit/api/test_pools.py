"""/v2/lbaas/pools: create on a listener or a load balancer, the protocol matrix, session
persistence and TLS rules, updates, deletes, locking, quota and lists."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from statera.db import models as m
from statera.services import loadbalancers, users
from statera.services import pools as pools_svc
from statera.services.context import RequestContext
from tests import certgen
from tests.conftest import Api, build_api

P = "/v2/lbaas/pools"
LB = "/v2/lbaas/loadbalancers"
LI = "/v2/lbaas/listeners"


def operations(api: Api) -> int:
    with api.deps.db.read() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(m.Operation)) or 0)


def make_listener(
    api: Api, lb: dict[str, Any], protocol: str = "HTTP", port: int = 80
) -> dict[str, Any]:
    li = api.post(
        LI, {"listener": {"loadbalancer_id": lb["id"], "protocol": protocol, "protocol_port": port}}
    )["listener"]
    api.settle()
    return li


def pool_body(**fields: Any) -> dict[str, Any]:
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    body.update(fields)
    return {"pool": body}


@pytest.fixture
def lb(api: Api) -> dict[str, Any]:
    return api.make_lb()


@pytest.fixture
def listener(api: Api, lb: dict[str, Any]) -> dict[str, Any]:
    return make_listener(api, lb)


def test_create_on_listener_locks_tree_then_settles(
    api: Api, lb: dict[str, Any], listener: dict[str, Any]
) -> None:
    pool = api.post(
        P, pool_body(listener_id=listener["id"], name="web", description="d", tags=["t1", "t2"])
    )["pool"]
    assert pool["provisioning_status"] == "PENDING_CREATE"
    assert pool["operating_status"] == "OFFLINE"
    assert pool["loadbalancers"] == [{"id": lb["id"]}]
    assert pool["listeners"] == [{"id": listener["id"]}]
    assert pool["members"] == [] and pool["healthmonitor_id"] is None
    assert pool["session_persistence"] is None
    assert pool["tenant_id"] == pool["project_id"] == "p1"
    assert pool["tags"] == ["t1", "t2"]
    assert pool["tls_enabled"] is False and pool["tls_ciphers"] is None
    assert api.get(f"{LB}/{lb['id']}")["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    assert api.get(f"{LI}/{listener['id']}")["listener"]["provisioning_status"] == "PENDING_UPDATE"
    with api.deps.db.read() as s:
        op = s.scalars(sa.select(m.Operation).where(m.Operation.kind == "create_pool")).one()
        assert (op.target_type, op.target_id, op.load_balancer_id) == ("pool", pool["id"], lb["id"])
    api.settle()
    shown = api.get(f"{P}/{pool['id']}")["pool"]
    assert shown["provisioning_status"] == "ACTIVE"
    assert api.get(f"{LI}/{listener['id']}")["listener"]["default_pool_id"] == pool["id"]
    assert api.get(f"{LB}/{lb['id']}")["loadbalancer"]["pools"] == [{"id": pool["id"]}]
    assert api.get(f"/v2.0/lbaas/pools/{pool['id']}")["pool"]["id"] == pool["id"]


def test_create_on_load_balancer_alone(api: Api, lb: dict[str, Any]) -> None:
    pool = api.post(
        P, pool_body(loadbalancer_id=lb["id"], lb_algorithm="SOURCE_IP_PORT", admin_state_up=False)
    )["pool"]
    assert pool["listeners"] == [] and pool["admin_state_up"] is False
    assert pool["lb_algorithm"] == "SOURCE_IP_PORT"
    api.settle()
    assert api.get(f"{P}/{pool['id']}")["pool"]["provisioning_status"] == "ACTIVE"


def test_listener_and_load_balancer_must_agree(
    api: Api, lb: dict[str, Any], listener: dict[str, Any]
) -> None:
    other = api.make_lb()
    r = api.post(P, pool_body(), status=400)
    assert "listener_id" in r["faultstring"]
    api.post(P, pool_body(listener_id=listener["id"], loadbalancer_id=other["id"]), status=400)
    api.post(P, pool_body(listener_id=listener["id"], loadbalancer_id=lb["id"]))
    api.post(P, pool_body(loadbalancer_id="9e5c1d38-6b5e-4a43-8f0e-3e0f2f0f0f0f"), status=404)
    api.post(P, pool_body(listener_id="9e5c1d38-6b5e-4a43-8f0e-3e0f2f0f0f0f"), status=404)


@pytest.mark.parametrize(
    ("listener_protocol", "pool_protocol", "ok"),
    [
        ("HTTP", "HTTP", True),
        ("HTTP", "PROXYV2", True),
        ("HTTP", "TCP", False),
        ("HTTP", "HTTPS", False),
        ("TCP", "HTTP", True),
        ("TCP", "PROXY", True),
        ("HTTPS", "HTTPS", True),
        ("HTTPS", "HTTP", False),
    ],
)
def test_listener_pool_protocol_matrix(
    api: Api, lb: dict[str, Any], listener_protocol: str, pool_protocol: str, ok: bool
) -> None:
    li = make_listener(api, lb, listener_protocol, 81)
    body = pool_body(listener_id=li["id"], protocol=pool_protocol)
    if ok:
        api.post(P, body)
    else:
        r = api.post(P, body, status=400)
        assert r["faultstring"] == (
            f"The pool protocol '{pool_protocol}' is invalid while "
            f"the listener protocol is '{listener_protocol}'"
        )


def test_prometheus_listener_takes_no_pool(api: Api, lb: dict[str, Any]) -> None:
    li = make_listener(api, lb, "PROMETHEUS", 9100)
    r = api.post(P, pool_body(listener_id=li["id"]), status=400)
    assert "PROMETHEUS" in r["faultstring"]


def test_listener_with_default_pool_refuses_another(api: Api, listener: dict[str, Any]) -> None:
    api.post(P, pool_body(listener_id=listener["id"]))
    api.settle()
    api.post(P, pool_body(listener_id=listener["id"]), status=409)


BAD_POOLS = [
    {"protocol": "FTP"},
    {"lb_algorithm": "RANDOM"},
    {"protocol": "UDP"},
    {"protocol": "SCTP"},
    {"session_persistence": {"type": "APP_COOKIE"}},
    {"session_persistence": {"type": "STICKY"}},
    {"session_persistence": {"cookie_name": "x"}},
    {"session_persistence": {"type": "HTTP_COOKIE", "cookie_name": "x"}},
    {"session_persistence": {"type": "SOURCE_IP", "cookie_name": "x"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "a b"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "a;b"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "a,b"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "a\\b"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "ab\n"}},
    {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "x" * 256}},
    {"session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 30}},
    {"session_persistence": {"type": "SOURCE_IP", "persistence_granularity": "255.0.0.0"}},
    {"protocol": "TCP", "session_persistence": {"type": "HTTP_COOKIE"}},
    {"protocol": "HTTPS", "session_persistence": {"type": "APP_COOKIE", "cookie_name": "c"}},
    {"tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256 HIGH"},
    {"tls_ciphers": "HIGH\nbind :1"},
    {"tls_ciphers": "HIGH#x"},
    {"tls_versions": ["TLSv9"]},
    {"tls_versions": []},
    {"alpn_protocols": ["spdy/3"]},
    {"crl_container_ref": "crl-1"},
    {"tls_container_ref": "ref with space"},
    {"tls_container_ref": "x" * 256},
    {"name": "a\nb"},
    {"name": "x" * 256},
    {"tags": ["ok", "bad\n"]},
    {"listeners": []},
    {"members": [{"address": "10.0.0.1", "protocol_port": 80}]},
    {"protocol": None},
]


@pytest.mark.parametrize("fields", BAD_POOLS)
def test_invalid_pool_is_refused_and_changes_nothing(
    api: Api, lb: dict[str, Any], fields: dict[str, Any]
) -> None:
    before = operations(api)
    r = api.post(P, pool_body(loadbalancer_id=lb["id"], **fields), status=400)
    assert r["faultcode"] == "Client" and r["faultstring"]
    assert operations(api) == before
    assert api.get(P)["pools"] == []
    assert api.get(f"{LB}/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"


def test_missing_mandatory_field(api: Api, lb: dict[str, Any]) -> None:
    r = api.post(P, {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP"}}, status=400)
    assert "lb_algorithm" in r["faultstring"]


def test_session_persistence_kinds(api: Api, lb: dict[str, Any]) -> None:
    http_li, tcp_li = make_listener(api, lb, "HTTP", 80), make_listener(api, lb, "TCP", 81)
    pool = api.post(
        P,
        pool_body(
            loadbalancer_id=lb["id"],
            session_persistence={"type": "APP_COOKIE", "cookie_name": "JSESSIONID"},
        ),
    )["pool"]
    assert pool["session_persistence"] == {
        "type": "APP_COOKIE",
        "cookie_name": "JSESSIONID",
        "persistence_timeout": None,
        "persistence_granularity": None,
    }
    api.settle()
    # PROXY pools are in HTTP mode behind an HTTP listener only.
    api.post(
        P,
        pool_body(
            listener_id=http_li["id"], protocol="PROXY", session_persistence={"type": "HTTP_COOKIE"}
        ),
    )
    api.settle()
    api.post(
        P,
        pool_body(
            listener_id=tcp_li["id"], protocol="PROXY", session_persistence={"type": "HTTP_COOKIE"}
        ),
        status=400,
    )
    api.post(
        P,
        pool_body(
            listener_id=tcp_li["id"], protocol="TCP", session_persistence={"type": "SOURCE_IP"}
        ),
    )


def test_tls_defaults_only_when_enabled(api: Api, lb: dict[str, Any]) -> None:
    certgen.seed_secrets(api.deps)
    api_opts = api.deps.settings.api_settings
    pool = api.post(
        P,
        pool_body(
            loadbalancer_id=lb["id"],
            tls_enabled=True,
            tls_container_ref=certgen.ref(certgen.CLIENT_ID),
            ca_tls_container_ref=certgen.CA_ID,
            crl_container_ref=certgen.ref(certgen.CRL_ID),
        ),
    )["pool"]
    assert pool["tls_ciphers"] == api_opts.default_pool_ciphers
    assert pool["tls_versions"] == api_opts.default_pool_tls_versions
    assert pool["alpn_protocols"] == api_opts.default_pool_alpn_protocols
    assert pool["tls_container_ref"] == certgen.ref(certgen.CLIENT_ID)
    assert pool["crl_container_ref"] == certgen.ref(certgen.CRL_ID)
    api.settle()
    pool = api.post(
        P,
        pool_body(
            loadbalancer_id=lb["id"],
            tls_enabled=True,
            tls_ciphers="ECDHE-RSA-AES256-GCM-SHA384:!aNULL",
            tls_versions=["TLSv1.3"],
            alpn_protocols=["h2"],
        ),
    )["pool"]
    assert (pool["tls_ciphers"], pool["tls_versions"], pool["alpn_protocols"]) == (
        "ECDHE-RSA-AES256-GCM-SHA384:!aNULL",
        ["TLSv1.3"],
        ["h2"],
    )


def test_prohibited_ciphers_and_minimum_tls_version(tmp_path: Path) -> None:
    a = build_api(
        tmp_path,
        STATERA_API_SETTINGS__TLS_CIPHER_PROHIBIT_LIST="RC4-SHA,DES-CBC3-SHA",
        STATERA_API_SETTINGS__MINIMUM_TLS_VERSION="TLSv1.2",
    )
    lb = a.make_lb()
    r = a.post(
        P,
        pool_body(loadbalancer_id=lb["id"], tls_enabled=True, tls_ciphers="AES128-SHA:RC4-SHA"),
        status=400,
    )
    assert "RC4-SHA" in r["faultstring"]
    r = a.post(
        P,
        pool_body(loadbalancer_id=lb["id"], tls_enabled=True, tls_versions=["TLSv1.1", "TLSv1.2"]),
        status=400,
    )
    assert "TLSv1.1" in r["faultstring"]
    a.post(P, pool_body(loadbalancer_id=lb["id"], tls_enabled=True, tls_versions=["TLSv1.2"]))


def test_update_changes_and_locks_tree(
    api: Api, lb: dict[str, Any], listener: dict[str, Any]
) -> None:
    pool = api.post(
        P,
        pool_body(
            listener_id=listener["id"],
            session_persistence={"type": "APP_COOKIE", "cookie_name": "c1"},
        ),
    )["pool"]
    api.settle()
    path = f"{P}/{pool['id']}"
    out = api.put(
        path,
        {
            "pool": {
                "name": "renamed",
                "lb_algorithm": "LEAST_CONNECTIONS",
                "admin_state_up": False,
                "tags": ["x"],
                "session_persistence": {"cookie_name": "c2"},
            }
        },
    )["pool"]
    assert out["provisioning_status"] == "PENDING_UPDATE"
    assert (out["name"], out["lb_algorithm"], out["admin_state_up"], out["tags"]) == (
        "renamed",
        "LEAST_CONNECTIONS",
        False,
        ["x"],
    )
    assert out["session_persistence"]["cookie_name"] == "c2"
    assert out["session_persistence"]["type"] == "APP_COOKIE"
    assert api.get(f"{LB}/{lb['id']}")["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    assert api.get(f"{LI}/{listener['id']}")["listener"]["provisioning_status"] == "PENDING_UPDATE"
    api.put(path, {"pool": {"name": "again"}}, status=409)
    api.settle()
    assert api.get(path)["pool"]["provisioning_status"] == "ACTIVE"
    # Another type drops the cookie name; null removes persistence.
    out = api.put(path, {"pool": {"session_persistence": {"type": "HTTP_COOKIE"}}})["pool"]
    assert out["session_persistence"]["type"] == "HTTP_COOKIE"
    assert out["session_persistence"]["cookie_name"] is None
    api.settle()
    out = api.put(path, {"pool": {"session_persistence": None, "tls_enabled": True}})["pool"]
    assert out["session_persistence"] is None
    assert out["tls_versions"] == api.deps.settings.api_settings.default_pool_tls_versions
    api.settle()
    out = api.put(path, {"pool": {"tls_versions": ["TLSv1.3"]}})["pool"]
    assert out["tls_versions"] == ["TLSv1.3"]
    api.settle()
    out = api.put(path, {"pool": {"tls_versions": None}})["pool"]
    assert out["tls_versions"] == api.deps.settings.api_settings.default_pool_tls_versions


@pytest.mark.parametrize(
    "fields",
    [
        {"protocol": "TCP"},
        {"listener_id": "9e5c1d38-6b5e-4a43-8f0e-3e0f2f0f0f0f"},
        {"lb_algorithm": "RANDOM"},
        {"lb_algorithm": None},
        {"admin_state_up": None},
        {"session_persistence": {"type": "APP_COOKIE"}},
        {"tls_ciphers": "A B"},
        {"crl_container_ref": "crl"},
    ],
)
def test_invalid_update_is_refused_and_changes_nothing(
    api: Api, lb: dict[str, Any], fields: dict[str, Any]
) -> None:
    pool = api.post(P, pool_body(loadbalancer_id=lb["id"], name="keep"))["pool"]
    api.settle()
    before = operations(api)
    api.put(f"{P}/{pool['id']}", {"pool": fields}, status=400)
    assert operations(api) == before
    shown = api.get(f"{P}/{pool['id']}")["pool"]
    assert shown["provisioning_status"] == "ACTIVE" and shown["lb_algorithm"] == "ROUND_ROBIN"


def test_changes_refused_while_tree_is_pending(api: Api, lb: dict[str, Any]) -> None:
    pool = api.post(P, pool_body(loadbalancer_id=lb["id"]))["pool"]
    api.post(P, pool_body(loadbalancer_id=lb["id"]), status=409)
    r = api.put(f"{P}/{pool['id']}", {"pool": {"name": "x"}}, status=409)
    assert r["faultstring"] == f"Load Balancer {lb['id']} is immutable and cannot be updated."
    api.delete(f"{P}/{pool['id']}", status=409)


def test_delete_then_gone(api: Api, lb: dict[str, Any], listener: dict[str, Any]) -> None:
    pool = api.post(P, pool_body(listener_id=listener["id"]))["pool"]
    api.settle()
    api.delete(f"{P}/{pool['id']}")
    assert api.get(f"{P}/{pool['id']}")["pool"]["provisioning_status"] == "PENDING_DELETE"
    assert api.get(f"{LI}/{listener['id']}")["listener"]["provisioning_status"] == "PENDING_UPDATE"
    api.settle()
    api.get(f"{P}/{pool['id']}", status=404)
    api.delete(f"{P}/{pool['id']}", status=404)
    assert api.get(f"{LI}/{listener['id']}")["listener"]["default_pool_id"] is None
    assert api.get(f"{LB}/{lb['id']}")["loadbalancer"]["provisioning_status"] == "ACTIVE"


def test_pool_used_by_l7_policy_cannot_be_deleted(
    api: Api, lb: dict[str, Any], listener: dict[str, Any]
) -> None:
    pool = api.post(P, pool_body(loadbalancer_id=lb["id"]))["pool"]
    api.settle()
    policy = api.post(
        "/v2/lbaas/l7policies",
        {
            "l7policy": {
                "listener_id": listener["id"],
                "action": "REDIRECT_TO_POOL",
                "redirect_pool_id": pool["id"],
            }
        },
    )["l7policy"]
    api.settle()
    assert api.get(f"{P}/{pool['id']}")["pool"]["listeners"] == [{"id": listener["id"]}]
    r = api.delete(f"{P}/{pool['id']}", status=409)
    assert r["faultstring"] == f"Pool {pool['id']} is in use by L7 policy {policy['id']}."
    assert api.get(f"{P}/{pool['id']}")["pool"]["provisioning_status"] == "ACTIVE"


def test_pool_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_POOL_QUOTA="1")
    lb = a.make_lb()
    a.post(P, pool_body(loadbalancer_id=lb["id"]))
    a.settle()
    r = a.post(P, pool_body(loadbalancer_id=lb["id"]), status=403)
    assert r["faultstring"] == "Quota has been met for resources: pool"


def test_list_filters_sort_pages_and_fields(
    api: Api, lb: dict[str, Any], listener: dict[str, Any]
) -> None:
    ids = {}
    for name, proto, tags in (("a", "HTTP", ["x"]), ("b", "TCP", ["x", "y"]), ("c", "PROXY", [])):
        body = pool_body(loadbalancer_id=lb["id"], name=name, protocol=proto, tags=tags)
        if name == "a":
            body["pool"]["listener_id"] = listener["id"]
        ids[name] = api.post(P, body)["pool"]["id"]
        api.settle()

    def names(query: str) -> list[str]:
        return [p["name"] for p in api.get(f"{P}?{query}")["pools"]]

    assert names("") == ["a", "b", "c"]
    assert names("protocol=TCP") == ["b"]
    assert names("name=a&name=c") == ["a", "c"]
    assert names(f"loadbalancer_id={lb['id']}&admin_state_up=true") == ["a", "b", "c"]
    assert names(f"listener_id={listener['id']}") == ["a"]
    assert names("tags=x,y") == ["b"]
    assert names("tags-any=x") == ["a", "b"]
    assert names("not-tags-any=x") == ["c"]
    assert names("sort=name:desc") == ["c", "b", "a"]
    page = api.get(f"{P}?limit=2&sort=name:asc")
    assert [p["name"] for p in page["pools"]] == ["a", "b"]
    assert [link["rel"] for link in page["pools_links"]] == ["next"]
    page = api.get(f"{P}?limit=2&sort=name:asc&marker={ids['b']}")
    assert [p["name"] for p in page["pools"]] == ["c"]
    only = api.get(f"{P}?fields=id&fields=name")["pools"][0]
    assert set(only) == {"id", "name"}
    assert set(api.get(f"{P}/{ids['a']}?fields=id,protocol")["pool"]) == {"id", "protocol"}
    assert len(api.get("/v2.0/lbaas/pools")["pools"]) == 3
    api.get(f"{P}?colour=blue", status=400)
    api.get(f"{P}?sort=colour", status=400)


def test_other_projects_cannot_see_or_change(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    users.add_user(a.deps.db, "alice", "pw-a", "pa", ["member"])
    users.add_user(a.deps.db, "bob", "pw-b", "pb", ["member"])

    def basic(name: str, password: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
        }

    a.headers = basic("alice", "pw-a")
    lb = a.make_lb()
    pool = a.post(P, pool_body(loadbalancer_id=lb["id"]))["pool"]
    a.settle()
    a.headers = basic("bob", "pw-b")
    assert a.get(P)["pools"] == []
    a.get(f"{P}?project_id=pa", status=403)
    a.get(f"{P}/{pool['id']}", status=403)
    a.put(f"{P}/{pool['id']}", {"pool": {"name": "x"}}, status=403)
    a.post(P, pool_body(loadbalancer_id=lb["id"]), status=403)


def test_single_call_create_builds_members_and_monitor(api: Api) -> None:
    ctx = RequestContext(project_id="p1", noauth=True, is_admin=True)
    pool_data = {
        "name": "web",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [
            {"address": "10.0.0.11", "protocol_port": 80},
            {"address": "10.0.0.12", "protocol_port": 80, "weight": 0},
        ],
        "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2},
    }
    assert pools_svc.planned_counts(pool_data) == {"pool": 1, "member": 2, "health_monitor": 1}
    lb = loadbalancers.create(api.deps, ctx, {"vip_subnet_id": api.subnet_id, "pools": [pool_data]})
    pools = api.get(P)["pools"]
    assert len(pools) == 1 and len(pools[0]["members"]) == 2
    assert pools[0]["provisioning_status"] == "PENDING_CREATE"
    members = api.get(f"{P}/{pools[0]['id']}/members")["members"]
    assert {mb["operating_status"] for mb in members} == {"OFFLINE"}
    hm = api.get(f"/v2/lbaas/healthmonitors/{pools[0]['healthmonitor_id']}")["healthmonitor"]
    assert (hm["url_path"], hm["max_retries_down"]) == ("/", 3)
    api.settle()
    assert api.get(f"{LB}/{lb.id}")["loadbalancer"]["provisioning_status"] == "ACTIVE"
    assert api.get(f"{P}/{pools[0]['id']}")["pool"]["provisioning_status"] == "ACTIVE"
