"""The API and its repositories on SQLite, MariaDB and PostgreSQL: one scenario through
every resource, with filters, sorting, pagination and tags, on each backend."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import build_api


def test_whole_api_on_each_backend(tmp_path: Path, db_url: str) -> None:
    api = build_api(tmp_path, db_url)
    try:
        _scenario(api)
    finally:
        api.client.close()
        api.deps.db.dispose()


def _scenario(api) -> None:  # type: ignore[no-untyped-def]
    sub = api.subnet_id
    lb = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "web", "vip_subnet_id": sub, "tags": ["prod", "eu"],
        "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 80,
                       "insert_headers": {"X-Forwarded-For": "true"},
                       "default_pool": {"name": "app", "protocol": "HTTP",
                                        "lb_algorithm": "ROUND_ROBIN",
                                        "session_persistence": {"type": "HTTP_COOKIE"},
                                        "members": [{"address": "10.210.0.50",
                                                     "protocol_port": 8080}],
                                        "healthmonitor": {"type": "HTTP", "delay": 5,
                                                          "timeout": 3, "max_retries": 3}}}]}}
    )["loadbalancer"]
    api.settle()
    lb_id = lb["id"]
    listener_id = lb["listeners"][0]["id"]
    pool_id = lb["pools"][0]["id"]
    tree = api.get(f"/v2/lbaas/loadbalancers/{lb_id}/status")["statuses"]["loadbalancer"]
    assert tree["provisioning_status"] == "ACTIVE"
    assert tree["listeners"][0]["pools"][0]["health_monitor"]["operating_status"] == "ONLINE"

    # Children, one change at a time (each waits for the previous: 409 otherwise).
    api.post(f"/v2/lbaas/pools/{pool_id}/members",
             {"member": {"address": "10.210.0.51", "protocol_port": 8080, "weight": 5}})
    api.post(f"/v2/lbaas/pools/{pool_id}/members",
             {"member": {"address": "10.210.0.52", "protocol_port": 8080}}, status=409)
    api.settle()
    api.put(f"/v2/lbaas/pools/{pool_id}/members", {"members": [
        {"address": "10.210.0.51", "protocol_port": 8080, "weight": 7},
        {"address": "10.210.0.53", "protocol_port": 8080}]}, status=202)
    api.settle()
    members = api.get(f"/v2/lbaas/pools/{pool_id}/members?sort=address:asc")["members"]
    assert [(mb["address"], mb["weight"], mb["provisioning_status"]) for mb in members] == [
        ("10.210.0.51", 7, "ACTIVE"), ("10.210.0.53", 1, "ACTIVE")]
    alt = api.post("/v2/lbaas/pools", {"pool": {"name": "alt", "loadbalancer_id": lb_id,
                                                "protocol": "HTTP",
                                                "lb_algorithm": "LEAST_CONNECTIONS"}})["pool"]
    api.settle()
    policy = api.post("/v2/lbaas/l7policies", {"l7policy": {
        "listener_id": listener_id, "action": "REDIRECT_TO_POOL",
        "redirect_pool_id": alt["id"]}})["l7policy"]
    api.settle()
    api.post(f"/v2/lbaas/l7policies/{policy['id']}/rules", {"rule": {
        "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}})
    api.settle()
    api.put(f"/v2/lbaas/listeners/{listener_id}",
            {"listener": {"connection_limit": 100, "tags": ["edge"]}})
    api.settle()

    # Lists: filters, tags, sorting, pagination, fields.
    for i in range(4):
        api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
            "name": f"extra-{i}", "vip_subnet_id": sub, "tags": ["eu"] if i % 2 else []}})
    api.settle()
    names = [x["name"] for x in api.get(
        "/v2/lbaas/loadbalancers?tags-any=eu&sort=name:desc")["loadbalancers"]]
    assert names == ["web", "extra-3", "extra-1"]
    page1 = api.get("/v2/lbaas/loadbalancers?limit=2&sort=name:asc&fields=name")
    assert [x for x in page1["loadbalancers"]] == [{"name": "extra-0"}, {"name": "extra-1"}]
    nxt = next(link["href"] for link in page1["loadbalancers_links"] if link["rel"] == "next")
    page2 = api.get(nxt[nxt.index("/v2"):])
    assert [x["name"] for x in page2["loadbalancers"]] == ["extra-2", "extra-3"]
    assert [x["id"] for x in api.get(
        f"/v2/lbaas/listeners?protocol=HTTP&loadbalancer_id={lb_id}")["listeners"]] == [
        listener_id]
    assert api.get("/v2/lbaas/pools?lb_algorithm=LEAST_CONNECTIONS")["pools"][0]["id"] == alt["id"]
    assert api.get(f"/v2/lbaas/loadbalancers/{lb_id}/stats")["stats"]["bytes_in"] == 0

    # Quotas: counted from live rows.
    api.put(f"/v2/lbaas/quotas/{api.project}", {"quota": {"load_balancer": 5}}, status=202)
    api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {"vip_subnet_id": sub}}, status=403)

    # Cascade delete leaves nothing behind.
    api.delete(f"/v2/lbaas/loadbalancers/{lb_id}?cascade=true")
    api.settle()
    api.get(f"/v2/lbaas/loadbalancers/{lb_id}", status=404)
    api.get(f"/v2/lbaas/pools/{pool_id}", status=404)
    assert api.get(f"/v2/lbaas/listeners?loadbalancer_id={lb_id}")["listeners"] == []
    assert api.get(f"/v2.0/ports?device_id={lb_id}")["ports"] == []
