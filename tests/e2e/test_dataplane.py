"""Real traffic end to end: `statera up` with the netns compute, bridge network and REST
amphora drivers; members are small HTTP servers in namespaces of their own on a tenant bridge;
the client is the host. Everything created here has unique names and is removed at the end."""

from __future__ import annotations

import time

import httpx
import pytest
from bench.testbed import MEMBER_PORT, Testbed

pytestmark = pytest.mark.slow


def test_http_load_balancer_serves_real_traffic(bed: Testbed) -> None:
    client = bed.api()
    subnet = bed.subnet_id(client)
    m0, m1 = (m.address for m in bed.members)
    started = time.monotonic()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "web", "vip_subnet_id": subnet, "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m0, "protocol_port": MEMBER_PORT},
                    {"address": m1, "protocol_port": MEMBER_PORT}]}}]}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"])
    vip = lb["vip_address"]
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while len(seen) < 4 and time.monotonic() < deadline:
        try:
            seen.append(httpx.get(f"http://{vip}/", timeout=2).text)
        except httpx.HTTPError:
            time.sleep(0.05)
    print(f"POST to serving: {time.monotonic() - started:.2f}s")
    assert sorted(set(seen)) == ["member0", "member1"], bed.diagnose()
    assert seen[0] != seen[1] and seen[1] != seen[2]  # round robin alternates

    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Cascade delete leaves nothing of the amphora behind on the host.
    assert bed.leftovers() == []
