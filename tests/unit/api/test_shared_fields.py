"""Checks shared by several resources (services/fields.py) refuse the same inputs everywhere."""

from __future__ import annotations

from tests.conftest import Api


def _lb_with_listener(api: Api) -> tuple[str, str]:
    lb = api.make_lb()
    listener = api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}})["listener"]
    api.settle()
    return lb["id"], listener["id"]


def test_pool_refs_empty_alpn_and_rule_keys(api: Api) -> None:
    lb_id, listener_id = _lb_with_listener(api)
    base = {"loadbalancer_id": lb_id, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    api.post("/v2/lbaas/pools", {"pool": {**base, "tls_container_ref": "a|b"}}, status=400)
    api.post("/v2/lbaas/pools", {"pool": {**base, "tls_enabled": True,
                                          "alpn_protocols": []}}, status=400)
    policy = api.post("/v2/lbaas/l7policies", {"l7policy": {
        "listener_id": listener_id, "action": "REJECT"}})["l7policy"]
    api.settle()
    api.post(f"/v2/lbaas/l7policies/{policy['id']}/rules", {"rule": {
        "type": "HEADER", "compare_type": "EQUAL_TO", "key": "X#a", "value": "v"}}, status=400)
    # Nothing was changed by the refused requests.
    assert api.get(f"/v2/lbaas/pools?loadbalancer_id={lb_id}")["pools"] == []
    assert api.get(f"/v2/lbaas/l7policies/{policy['id']}/rules")["rules"] == []
