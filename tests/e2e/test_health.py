"""Heartbeats on real amphorae: the agents' own per-amphora signed heartbeats reach the
health manager of `statera up` over the management bridge, drive operating statuses and the
statistics API; a SINGLE amphora whose processes die is noticed within 5 s and replaced,
serving again within 10 s (targets: "SINGLE, amphora dies")."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import httpx
import pytest
from bench.testbed import MEMBER_PORT, Testbed

from statera.drivers.netns.amphora_ns import AmphoraNames

pytestmark = pytest.mark.slow


def create_lb(bed: Testbed, client: httpx.Client, name: str) -> dict[str, Any]:
    m0, m1 = (m.address for m in bed.members)
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": name, "vip_subnet_id": bed.subnet_id(client), "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1,
                                  "max_retries": 1, "max_retries_down": 1,
                                  "url_path": "/health"},
                "members": [{"address": m0, "protocol_port": MEMBER_PORT},
                            {"address": m1, "protocol_port": MEMBER_PORT}]}}]}})
    assert r.status_code == 201, r.text
    lb: dict[str, Any] = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"])
    return lb


def wait_for(what: str, predicate: Any, timeout: float, bed: Testbed) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout} s\n" \
            + bed.log_tail()
        time.sleep(0.05)
    return time.monotonic() - started


def status_tree(client: httpx.Client, lb_id: str) -> dict[str, Any]:
    tree: dict[str, Any] = client.get(
        f"/v2/lbaas/loadbalancers/{lb_id}/status").json()["statuses"]["loadbalancer"]
    return tree


def serves(vip: str) -> bool:
    try:
        return httpx.get(f"http://{vip}/", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def test_heartbeats_drive_statuses_and_statistics(bed: Testbed) -> None:
    client = bed.api()
    lb = create_lb(bed, client, "heartbeats")
    def members_online() -> bool:
        # The load balancer can read ONLINE (settled by the worker) a beat before the first
        # heartbeat that reports its members has been written.
        tree = status_tree(client, lb["id"])
        pool = tree["listeners"][0]["pools"][0]
        return tree["operating_status"] == "ONLINE" and \
            {m["operating_status"] for m in pool["members"]} == {"ONLINE"}

    wait_for("members ONLINE from heartbeats", members_online, 15, bed)

    for _ in range(10):
        assert httpx.get(f"http://{lb['vip_address']}/", timeout=5).status_code == 200
    wait_for("statistics", lambda: client.get(
        f"/v2/lbaas/loadbalancers/{lb['id']}/stats").json()["stats"]["total_connections"]
        >= 10, 10, bed)
    stats = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}/stats").json()["stats"]
    assert stats["bytes_out"] > 0 and stats["bytes_in"] > 0

    # A member failing its health checks: the member ERROR, its pool and the LB DEGRADED.
    sick = bed.members[0]
    sick.set_healthy(False)
    try:
        def degraded() -> bool:
            t = status_tree(client, lb["id"])
            members = {m["address"]: m["operating_status"]
                       for m in t["listeners"][0]["pools"][0]["members"]}
            return members[sick.address] == "ERROR" and t["operating_status"] == "DEGRADED"

        wait_for("member ERROR", degraded, 15, bed)
    finally:
        sick.set_healthy(True)
    wait_for("back ONLINE",
             lambda: status_tree(client, lb["id"])["operating_status"] == "ONLINE", 15, bed)
    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})


def test_a_dead_single_amphora_is_noticed_and_replaced(bed: Testbed) -> None:
    client = bed.api()
    keep = create_lb(bed, client, "bystander")  # so the dead one is not "everyone silent"
    lb = create_lb(bed, client, "victim")
    vip = lb["vip_address"]
    for one in (keep, lb):
        wait_for("heartbeats", lambda one=one: status_tree(client, one["id"])[
            "operating_status"] == "ONLINE", 15, bed)
    [amp] = bed.amphora_ids(client, lb["id"])
    names = AmphoraNames(amp)
    pids = []
    for ns in (names.mgmt_ns, names.tenant_ns):
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             check=True).stdout
        pids += [int(p) for p in out.split()]
    assert pids, "nothing runs in the amphora's namespaces"
    killed = time.monotonic()
    for pid in pids:  # the amphora's agent and haproxy, started by this testbed's statera
        os.kill(pid, signal.SIGKILL)

    def failing_over() -> bool:
        state = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
        return bool(state["provisioning_status"] == "PENDING_UPDATE"
                    or amp not in bed.amphora_ids(client, lb["id"]))

    detected = wait_for("failover started", failing_over, 10, bed)
    wait_for("replacement serving", lambda: serves(vip), 20, bed)
    serving = time.monotonic() - killed
    print(f"[health] SINGLE amphora killed: failover started after {detected:.2f} s, "
          f"traffic served by the replacement after {serving:.2f} s")
    bed.wait_lb_active(client, lb["id"])
    assert amp not in bed.amphora_ids(client, lb["id"])
    assert detected <= 5.0
    assert serving <= 10.0
    # The bystander was never touched.
    assert status_tree(client, keep["id"])["provisioning_status"] == "ACTIVE"
    for one in (keep, lb):
        client.delete(f"/v2/lbaas/loadbalancers/{one['id']}", params={"cascade": "true"})
