"""One load balancer shared by the tests of a module, changed test by test, for the traffic
tests (test_traffic*.py, test_isolation.py): API changes that wait until the amphora runs
the new config, and the haproxy.cfg and log when something goes wrong."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from bench.testbed import MEMBER_PORT, Member, Testbed


class Lb:
    """The shared load balancer: its id, VIP and the API client."""

    def __init__(self, bed: Testbed, client: httpx.Client, lb: dict[str, Any]) -> None:
        self.bed, self.client = bed, client
        self.id: str = lb["id"]
        self.vip: str = lb["vip_address"]

    def diagnose(self) -> str:
        """The testbed's view plus this load balancer's haproxy.cfg and haproxy log."""
        out = [self.bed.diagnose()]
        for d in (self.bed.workdir / "state" / "netns" / "amphorae").glob(f"*/lb/{self.id}"):
            for name in ("haproxy.cfg", "haproxy.log"):
                if (d / name).exists():
                    out.append(f"--- {name}\n{(d / name).read_text(errors='replace')[-6000:]}")
        return "\n".join(out)

    def change(self, method: str, path: str, body: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """POST/PUT ``path`` (under /v2/lbaas), wait until the load balancer is ACTIVE again
        (its amphora then runs the new config) and check that the change took."""
        r = self.client.request(method, f"/v2/lbaas/{path}", json=body)
        assert r.status_code in (200, 201, 202), f"{method} {path}: {r.status_code} {r.text}"
        self.bed.wait_lb_active(self.client, self.id)
        if not r.content:
            return {}
        obj: dict[str, Any] = next(iter(r.json().values()))
        if isinstance(obj, dict) and "provisioning_status" in obj:
            where = path if method == "PUT" else f"{path}/{obj['id']}"
            now = self.client.get(f"/v2/lbaas/{where}").json()
            status = next(iter(now.values()))["provisioning_status"]
            assert status == "ACTIVE", f"{method} {path}: {status}\n{self.diagnose()}"
        return obj

    def listener(self, port: int, protocol: str = "HTTP", **extra: Any) -> dict[str, Any]:
        return self.change("POST", "listeners", {"listener": {
            "loadbalancer_id": self.id, "protocol": protocol, "protocol_port": port, **extra}})

    def pool(self, members: list[Member], listener_id: str | None = None,
             **extra: Any) -> dict[str, Any]:
        where = {"listener_id": listener_id} if listener_id else {"loadbalancer_id": self.id}
        pool = self.change("POST", "pools", {"pool": {
            **where, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **extra}})
        self.change("PUT", f"pools/{pool['id']}/members", {"members": [
            {"address": m.address, "protocol_port": MEMBER_PORT} for m in members]})
        return pool


    def members(self, pool_id: str) -> dict[str, dict[str, Any]]:
        """The pool's members by address."""
        r = self.client.get(f"/v2/lbaas/pools/{pool_id}/members")
        assert r.status_code == 200, r.text
        return {m["address"]: m for m in r.json()["members"]}

    def operating_status(self, path: str, wanted: str, timeout: float = 2.5) -> str:
        """The operating status of the object at ``path`` (under /v2/lbaas) once it reads
        ``wanted``, or the last one read after ``timeout`` s (the health manager writes
        statuses from the amphora's heartbeats, about once a second)."""
        deadline = time.monotonic() + timeout
        while True:
            obj = next(iter(self.client.get(f"/v2/lbaas/{path}").json().values()))
            status: str = obj["operating_status"]
            if status == wanted or time.monotonic() > deadline:
                return status
            time.sleep(0.1)


def shared_lb(bed: Testbed, name: str, subnet_id: str | None = None) -> Iterator[Lb]:
    """Body of a module fixture: a load balancer without listeners; at the end a cascade
    delete that must leave nothing of its amphorae behind."""
    client = bed.api()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": name, "vip_subnet_id": subnet_id or bed.subnet_id(client)}})
    assert r.status_code == 201, r.text
    shared = Lb(bed, client, r.json()["loadbalancer"])
    bed.wait_lb_active(client, shared.id)
    yield shared
    amphorae = bed.amphora_ids(client, shared.id)
    r = client.delete(f"/v2/lbaas/loadbalancers/{shared.id}", params={"cascade": "true"})
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{shared.id}").status_code != 404:
        assert time.monotonic() < deadline, "cascade delete did not finish"
        time.sleep(0.1)
    assert amphorae and bed.leftovers(amphorae) == []


def http() -> httpx.Client:
    # No environment proxies: the VIP is on a bridge of this host.
    return httpx.Client(timeout=5, trust_env=False, follow_redirects=False)
