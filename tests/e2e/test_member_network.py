"""Members on a second tenant network, and manual failover, on real amphorae: the amphora
gets an interface and an address of its own on the members' network; a failover builds a
replacement that serves the same VIP, retires the old amphora and frees its addresses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.testbed import MEMBER_PORT, Testbed, missing_requirements

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bed2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A testbed with a second tenant network; member0 on the VIP network, member1 on the
    second one."""
    problem = missing_requirements()
    if problem:
        pytest.skip(problem)
    bed = Testbed.start(Path(tmp_path_factory.mktemp("membernet")), members=1,
                        extra_networks=1)
    try:
        _, net, _ = bed.extra_networks[0]
        bed.add_member("member1", str(list(net.hosts())[60]), network=0)
        yield bed
    finally:
        bed.close()


def _amphorae(client: httpx.Client, lb_id: str) -> list[dict]:
    amps = client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb_id}).json()
    return [a for a in amps["amphorae"] if a["status"] != "DELETED"]


def test_members_on_another_network_and_failover(bed2: Testbed) -> None:
    client = bed2.api()
    subnets = {s["cidr"]: s["id"] for s in client.get("/v2.0/subnets").json()["subnets"]}
    _, second_net, _ = bed2.extra_networks[0]
    m0, m1 = bed2.members
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "two-nets", "vip_subnet_id": subnets[str(bed2.tenant_net)], "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m0.address, "protocol_port": MEMBER_PORT},
                    {"address": m1.address, "protocol_port": MEMBER_PORT,
                     "subnet_id": subnets[str(second_net)]}]}}]}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    bed2.wait_lb_active(client, lb["id"])
    vip = lb["vip_address"]
    assert set(bed2.answers(vip, 6)) == {"member0", "member1"}, bed2.diagnose()

    # The amphora's own address on the members' network is a port of that network.
    (old,) = _amphorae(client, lb["id"])
    ports = client.get("/v2.0/ports", params={"device_id": old["id"]}).json()["ports"]
    assert [p["network_id"] for p in ports] == [
        next(n["id"] for n in client.get("/v2.0/networks").json()["networks"]
             if n["subnets"] == [subnets[str(second_net)]])]

    # Manual failover: a new amphora takes over the VIP; the old one is gone from the host.
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover").status_code == 202
    time.sleep(0.2)
    bed2.wait_lb_active(client, lb["id"], timeout=60)
    (new,) = _amphorae(client, lb["id"])
    assert new["id"] != old["id"]
    assert set(bed2.answers(vip, 6)) == {"member0", "member1"}, bed2.diagnose()
    assert client.get("/v2.0/ports", params={"device_id": old["id"]}).json()["ports"] == []
    assert not [ns for ns in bed2.ip.namespaces() if old["id"].replace("-", "")[:10] in ns]

    # Amphora failover through the admin API works the same way.
    assert client.put(f"/v2/octavia/amphorae/{new['id']}/failover").status_code == 202
    time.sleep(0.2)
    bed2.wait_lb_active(client, lb["id"], timeout=60)
    (third,) = _amphorae(client, lb["id"])
    assert third["id"] not in (old["id"], new["id"])
    assert set(bed2.answers(vip, 6)) == {"member0", "member1"}, bed2.diagnose()

    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert bed2.leftovers() == []
    assert client.get("/v2.0/ports", params={"device_id": third["id"]}).json()["ports"] == []
