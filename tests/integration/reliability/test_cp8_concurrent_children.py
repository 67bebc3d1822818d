"""CP-8: 50 concurrent changes to the children of one load balancer (member weight PUTs and
member creates), on MariaDB and PostgreSQL.

Pass: each request gets 2xx (accepted) or 409 (the tree was busy), nothing else; exactly the
accepted ones left an operation; the final database state is that of the last accepted change
to each member; the config pushed after each accepted change lists exactly the members that
existed after it, and the last one pushed lists exactly the final members.

Each request carries its own X-OpenStack-Request-Id, which the operation it caused records,
so the order in which the changes were accepted is read from the operations' created_at.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.services import common
from tests.integration.reliability.conftest import (
    ServerClusters,
    assert_settled,
    burst,
    database_url,
    single_call_body,
    wait_for,
)

CHANGES = 50
STAGGER = 0.01


@pytest.mark.parametrize("kind", [pytest.param("mariadb", marks=pytest.mark.mariadb),
                                  pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_tree_lock(kind: str, tmp_path: Path) -> None:
    """The tree lock every change takes (SELECT ... FOR UPDATE of the load balancer row,
    whose VIP is joined eagerly) must work on both servers: PostgreSQL refuses FOR UPDATE on
    the nullable side of an outer join unless it names the table to lock."""
    with database_url(kind, tmp_path) as url:
        upgrade(url)
        db = Database(url, pool_size=1, max_overflow=0)
        try:
            lb_id = str(uuid.uuid4())
            with db.write() as s:
                lb = m.LoadBalancer(id=lb_id, project_id="p", provisioning_status="ACTIVE",
                                    operating_status="ONLINE")
                lb.vip = m.Vip(ip_address="10.210.0.9")
                s.add(lb)
            with db.write() as s:
                locked = common.lock_load_balancer(s, lb_id)
                assert locked.vip is not None and locked.vip.ip_address == "10.210.0.9"
        finally:
            db.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("kind", [pytest.param("mariadb", marks=pytest.mark.mariadb),
                                  pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_concurrent_member_changes(server_clusters: ServerClusters, kind: str) -> None:
    c = server_clusters.get(kind)
    r = c.create_lb(single_call_body(c.subnet_id(), "cp8", members=2))
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    lb_id, pool_id = lb["id"], lb["pools"][0]["id"]
    initial = {mb["id"] for mb in lb["pools"][0]["members"]}
    originals = sorted(initial)
    wait_for("the load balancer to be ACTIVE", lambda: c.settled([lb_id]), timeout=30)

    run = uuid.uuid4().hex[:8]

    def rid(i: int) -> str:
        return f"req-cp8-{run}-{i:02d}"

    def change(i: int) -> httpx.Response:
        # Staggered by 10 ms each: the requests still overlap heavily, but also span a few
        # flows, so several changes get accepted one after another.
        time.sleep(i * STAGGER)
        headers = {"X-OpenStack-Request-Id": rid(i)}
        if i % 2 == 0:  # a weight (and name) change of one of the two original members
            member = originals[(i // 2) % 2]
            return c.client.put(f"/v2/lbaas/pools/{pool_id}/members/{member}", headers=headers,
                                json={"member": {"weight": i + 1, "name": f"put-{i}"}})
        return c.client.post(f"/v2/lbaas/pools/{pool_id}/members", headers=headers,
                             json={"member": {"address": f"10.210.0.{100 + i}",
                                              "protocol_port": 8080, "name": f"new-{i}"}})

    responses = burst(CHANGES, change)
    codes = [resp.status_code for resp in responses]
    unexpected = [(i, resp.status_code, resp.text[:300]) for i, resp in enumerate(responses)
                  if not (200 <= resp.status_code < 300 or resp.status_code == 409)]
    assert not unexpected, f"answers other than 2xx and 409: {unexpected}"
    accepted = {rid(i): i for i, code in enumerate(codes) if 200 <= code < 300}
    assert accepted, "no change was accepted"
    print(f"CP-8 on {kind}: {len(accepted)} of {CHANGES} accepted, "
          f"{codes.count(409)} got 409")

    wait_for("the tree to settle", lambda: c.settled([lb_id]), timeout=30, interval=0.2)
    assert_settled(c, [lb_id])
    assert c.load_balancers([lb_id])[lb_id].provisioning_status == "ACTIVE"

    # Exactly the accepted requests left an operation, and each one succeeded.
    ops = [op for op in c.operations([lb_id]) if op.kind != "create_load_balancer"]
    assert sorted(op.request_id or "" for op in ops) == sorted(accepted)
    assert all(op.state == "SUCCEEDED" for op in ops), [(op.kind, op.error) for op in ops]
    order = [accepted[op.request_id or ""] for op in
             sorted(ops, key=lambda op: op.created_at)]

    # Replay the accepted changes in that order: the expected state after each one.
    expected = {mid: {"weight": 1, "name": None} for mid in originals}
    created = {i: responses[i].json()["member"]["id"] for i in accepted.values() if i % 2}
    after_each: list[list[str]] = []
    for i in order:
        if i % 2 == 0:
            expected[originals[(i // 2) % 2]] = {"weight": i + 1, "name": f"put-{i}"}
        else:
            expected[created[i]] = {"weight": 1, "name": f"new-{i}"}
        after_each.append(sorted(expected))

    listed = c.client.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"]
    final = {mb["id"]: {"weight": mb["weight"], "name": mb["name"]} for mb in listed}
    assert final == expected
    assert all(mb["provisioning_status"] == "ACTIVE" for mb in listed)

    # The config pushed for each accepted change, in order, held exactly the members that
    # existed after that change; the last one holds exactly the final members.
    pushes = [call["args"]["members"] for call in c.calls()
              if call["call"] == "amphora.apply_config" and call["args"]["lb_id"] == lb_id]
    assert pushes[0] == originals  # the create
    assert pushes[1:] == after_each
    assert pushes[-1] == sorted(final)
