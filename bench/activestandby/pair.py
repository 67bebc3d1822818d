"""An ACTIVE_STANDBY load balancer on the namespace testbed, and what tests and the
benchmark need to disturb it: which amphora holds the VIP, the processes of an amphora's
tenant namespace, and an agent client (the controller's certificate) for its /vrrp routes."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.testbed import MEMBER_PORT, Testbed
from statera.domain.model import Amphora
from statera.drivers.amphora.rest import AgentTimeouts, RestAmphoraDriver
from statera.drivers.certs.local_ca import PkiPaths
from statera.drivers.netns.amphora_ns import AmphoraNames

TOPOLOGY_ENV = "STATERA_CONTROLLER_WORKER__LOADBALANCER_TOPOLOGY"
KEEPALIVED = Path("/usr/sbin/keepalived")


def start_bed(workdir: Path, members: int = 2, **env: str) -> Testbed:
    """A testbed whose `statera up` makes ACTIVE_STANDBY load balancers (``env``: more
    settings). Its config already has a [controller_worker] section, so the topology comes
    through the environment the process inherits (set only while it starts)."""
    wanted = {TOPOLOGY_ENV: "ACTIVE_STANDBY", **env}
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        return Testbed.start(workdir, members=members)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Pair:
    bed: Testbed
    client: httpx.Client
    lb_id: str
    vip: str
    agents: RestAmphoraDriver

    def close(self) -> None:
        self.agents.close()
        self.client.close()

    def amphorae(self) -> list[dict[str, Any]]:
        amps = self.client.get("/v2/octavia/amphorae",
                               params={"loadbalancer_id": self.lb_id}).json()["amphorae"]
        return [a for a in amps if a["status"] not in ("DELETED", "PENDING_DELETE")]

    def holders(self) -> list[str]:
        """Ids of the amphorae whose tenant namespace holds the VIP right now."""
        out = []
        for amp in self.amphorae():
            ns = AmphoraNames(amp["id"]).tenant_ns
            done = subprocess.run(["ip", "-n", ns, "-br", "addr", "show"],
                                  capture_output=True, text=True, check=False)
            if f" {self.vip}/32" in f" {done.stdout}".replace("\t", " "):
                out.append(amp["id"])
        return out

    def holder(self, timeout: float = 5.0) -> str:
        """The one amphora holding the VIP (waiting out an election in progress)."""
        deadline = time.monotonic() + timeout
        while len(found := self.holders()) != 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"VIP held by {found}\n{self.vrrp_logs()}\n"
                                     f"{self.bed.diagnose()}")
            time.sleep(0.05)
        return found[0]

    def amphora(self, amp_id: str) -> Amphora:
        amp = next(a for a in self.amphorae() if a["id"] == amp_id)
        return Amphora(id=amp["id"], status=amp["status"], lb_network_ip=amp["lb_network_ip"])

    def vrrp_logs(self, chars: int = 1500) -> str:
        """The tail of every amphora's keepalived log (for failure messages)."""
        out = []
        for log in sorted(self.bed.workdir.glob("state/netns/amphorae/*/lb/vrrp/keepalived.log")):
            amp = log.parents[2].name
            out.append(f"--- keepalived of {amp}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)

    def replace(self, amp_id: str, timeout: float = 60) -> None:
        """Fail ``amp_id`` over through the API, unless the health manager is doing it
        already (409 while its failover runs, 404 once it is gone), and wait until the load
        balancer is ACTIVE with two allocated amphorae, ``amp_id`` not among them."""
        r = self.client.put(f"/v2/octavia/amphorae/{amp_id}/failover")
        if r.status_code not in (202, 404, 409):
            raise AssertionError(f"failover of {amp_id}: {r.status_code} {r.text}")
        self.wait_whole(amp_id, timeout)

    def wait_whole(self, gone: str, timeout: float = 60) -> None:
        """Wait until the load balancer is ACTIVE with two allocated amphorae, ``gone`` not
        among them."""
        amp_id = gone
        deadline = time.monotonic() + timeout
        while True:
            lb = self.client.get(f"/v2/lbaas/loadbalancers/{self.lb_id}").json()["loadbalancer"]
            amps = self.amphorae()
            if (lb["provisioning_status"] == "ACTIVE" and len(amps) == 2
                    and amp_id not in {a["id"] for a in amps}
                    and {a["status"] for a in amps} == {"ALLOCATED"}):
                return
            if lb["provisioning_status"] == "ERROR" or time.monotonic() > deadline:
                raise AssertionError(f"the pair is not whole again: {lb['provisioning_status']} "
                                     f"{amps}\n{self.bed.log_tail()}")
            time.sleep(0.1)

    def wait_active(self, timeout: float = 60) -> None:
        time.sleep(0.2)
        self.bed.wait_lb_active(self.client, self.lb_id, timeout)


def create_pair(bed: Testbed) -> Pair:
    """An HTTP load balancer on port 80 over the testbed's members, ACTIVE."""
    client = bed.api()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "pair", "vip_subnet_id": bed.subnet_id(client), "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m.address, "protocol_port": MEMBER_PORT}
                    for m in bed.members]}}]}})
    if r.status_code != 201:
        raise AssertionError(r.text)
    lb = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"], timeout=60)
    agents = RestAmphoraDriver(PkiPaths(bed.workdir / "state" / "pki"), timeouts=AgentTimeouts(
        connect=2, read=20, retries=3, retry_interval=0.2, max_retry_interval=0.5))
    return Pair(bed, client, lb["id"], lb["vip_address"], agents)


def tenant_pids(amp_id: str) -> list[int]:
    """Processes in an amphora's tenant namespace: its haproxy and keepalived."""
    ns = AmphoraNames(amp_id).tenant_ns
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                         check=True).stdout
    return [int(p) for p in out.split()]
