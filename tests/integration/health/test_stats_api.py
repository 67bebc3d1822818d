"""What heartbeats write is what the API reports: statistics of load balancers, listeners and
amphorae, and operating statuses in the status tree (on the `api` fixture's database: SQLite,
or the server chosen with --db)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from statera.db import models as m
from tests.conftest import Api
from tests.integration.health.conftest import Amphora, Running, Tree


def build(api: Api) -> Tree:
    lb = api.make_lb(listeners=[{
        "protocol": "HTTP", "protocol_port": 80,
        "default_pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
            {"address": "192.0.2.10", "protocol_port": 80},
            {"address": "192.0.2.11", "protocol_port": 80}]}}])
    tree = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status")["statuses"]["loadbalancer"]
    listener = tree["listeners"][0]
    pool = listener["pools"][0]
    with api.deps.db.write() as s:
        amp = s.scalars(sa.select(m.Amphora).where(m.Amphora.load_balancer_id == lb["id"])).one()
        amp.lb_network_ip = "127.0.0.1"  # the noop driver's amphora sends from loopback here
        amp_id = amp.id
    return Tree(lb["id"], listener["id"], pool["id"], [x["id"] for x in pool["members"]],
                amp_id)


def test_stats_and_statuses_through_the_api(api: Api,
                                            start_hm: Callable[..., Running]) -> None:
    tree = build(api)
    hm = start_hm(api.deps.db)
    amp = Amphora(tree.amphora, hm.clock)
    hm.send(amp.packet(tree, rx=1000, tx=4000, conns=3))
    hm.send(amp.packet(tree, rx=24, tx=96, conns=2,
                       members={tree.members[0]: "UP", tree.members[1]: "DOWN"}))
    hm.wait_written(2)

    expected = {"bytes_in": 1024, "bytes_out": 4096, "active_connections": 2,
                "total_connections": 2, "request_errors": 0}
    assert api.get(f"/v2/lbaas/loadbalancers/{tree.lb}/stats")["stats"] == expected
    assert api.get(f"/v2/lbaas/listeners/{tree.listener}/stats")["stats"] == expected
    amp_stats = api.get(f"/v2/octavia/amphorae/{tree.amphora}/stats")["amphora_stats"]
    assert [(s["listener_id"], s["bytes_in"]) for s in amp_stats] == [(tree.listener, 1024)]

    status = api.get(f"/v2/lbaas/loadbalancers/{tree.lb}/status")["statuses"]["loadbalancer"]
    assert status["operating_status"] == "DEGRADED"
    listener = status["listeners"][0]
    assert listener["operating_status"] == "ONLINE"
    pool = listener["pools"][0]
    assert pool["operating_status"] == "DEGRADED"
    assert {mem["id"]: mem["operating_status"] for mem in pool["members"]} == {
        tree.members[0]: "ONLINE", tree.members[1]: "ERROR"}
    # Provisioning statuses are never the health manager's business.
    assert status["provisioning_status"] == "ACTIVE"
    assert pool["provisioning_status"] == "ACTIVE"
