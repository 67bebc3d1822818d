"""Real traffic end to end: `statera up` with the netns compute, bridge network and REST
amphora drivers; members are small HTTP servers in namespaces of their own on a tenant bridge;
the client is the host. Everything created here has unique names and is removed at the end."""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.common import free_port

from statera.drivers.netns.amphora_ns import AmphoraNames, delete_namespace, unplug_veth
from statera.drivers.netns.host import foreign_networks, remove_bridge, remove_isolation
from statera.drivers.netns.ip import Ip

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SERVER = ("import http.server, sys\n"
          "name = sys.argv[1].encode()\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        self.send_response(200); self.send_header('Content-Length', str(len(name)))\n"
          "        self.end_headers(); self.wfile.write(name)\n"
          "    def log_message(self, *a): pass\n"
          "http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()\n")


def _free_cidrs(ip: Ip, count: int) -> list[ipaddress.IPv4Network]:
    used = [u for u in foreign_networks(ip) if u.version == 4 and u.prefixlen > 0]
    out: list[ipaddress.IPv4Network] = []
    for third in range(0, 256):
        net = ipaddress.ip_network(f"10.{241 + secrets.randbelow(12)}.{third}.0/24")
        if not any(net.overlaps(u) for u in used + out):
            out.append(net)  # type: ignore[arg-type]
        if len(out) == count:
            return out
    raise AssertionError("no free CIDRs")


@pytest.fixture
def dataplane(tmp_path: Path) -> Iterator[dict[str, object]]:
    if os.geteuid() != 0 or shutil.which("haproxy") is None:
        if os.environ.get("CI"):
            raise AssertionError("the data-plane test needs root and haproxy in CI")
        pytest.skip("needs root and haproxy")
    ip = Ip()
    tag = secrets.token_hex(3)
    mgmt_net, tenant_net = _free_cidrs(ip, 2)
    mgmt_bridge, tenant_bridge, table = f"st-m{tag}", f"st-p{tag}", f"statera_t{tag}"
    port = free_port()
    conf = tmp_path / "statera.conf"
    conf.write_text(f"""
[DEFAULT]
state_path = {tmp_path / 'state'}
[api_settings]
bind_port = {port}
[controller_worker]
compute_driver = compute_netns_driver
network_driver = network_bridge_driver
amphora_driver = amphora_haproxy_rest_driver
[haproxy_amphora]
default_connection_limit = 2000
[netns]
mgmt_bridge = {mgmt_bridge}
mgmt_cidr = {mgmt_net}
nft_table = {table}
[network:tenant{tag}]
cidr = {tenant_net}
bridge = {tenant_bridge}
""")
    members: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "statera.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([str(BIN / "statera"), "--config", str(conf), "up"], stdout=log,
                          stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert up.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "statera.log").read_text()
                time.sleep(0.1)
        hosts = list(tenant_net.hosts())
        for i, address in enumerate((hosts[49], hosts[50])):
            ns = f"statera-m{tag}{i}"
            members.append(ns)
            ip("netns", "add", ns)
            ip.in_ns(ns, "link", "set", "lo", "up")
            ip("link", "add", f"sbm{tag}{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", f"sbm{tag}{i}", "master", tenant_bridge, "up")
            ip.in_ns(ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip.in_ns(ns, "link", "set", "eth0", "up")
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                           SERVER, f"member{i}"]))
        yield {"url": url, "members": [str(hosts[49]), str(hosts[50])], "ip": ip,
               "log": tmp_path / "statera.log"}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        up.terminate()
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
        # The amphorae statera made: remove any it left (a failed test must not leak).
        leftovers = tmp_path / "state" / "netns" / "amphorae"
        for home in (leftovers.iterdir() if leftovers.exists() else []):
            names = AmphoraNames(home.name)
            for index in range(8):
                unplug_veth(ip, names.tenant_veth(index))
            unplug_veth(ip, names.mgmt_veth)
            delete_namespace(ip, names.tenant_ns)
            delete_namespace(ip, names.mgmt_ns)
            shutil.rmtree(names.socket_dir, ignore_errors=True)
        for ns in members:
            delete_namespace(ip, ns)
        for i in range(2):
            if ip.link_exists(f"sbm{tag}{i}"):
                ip("link", "del", f"sbm{tag}{i}")
        remove_bridge(ip, tenant_bridge)
        remove_bridge(ip, mgmt_bridge)
        remove_isolation(table)


def _diagnose(dataplane: dict, seen: list[str]) -> str:
    out = [f"seen={seen}"]
    for ns in dataplane["ip"].namespaces():
        if ns.startswith(("stt-", "stm-")):
            out.append(f"--- {ns}")
            out.append(subprocess.run(["ip", "-n", ns, "-br", "addr"], capture_output=True,
                                      text=True).stdout)
            out.append(subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                      text=True).stdout)
            out.append(subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltn"],
                                      capture_output=True, text=True).stdout)
    out.append(dataplane["log"].read_text()[-4000:])
    return "\n".join(out)


def _wait(client: httpx.Client, path: str, key: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        obj = client.get(path).json()[key]
        if obj["provisioning_status"] in ("ACTIVE", "ERROR") or time.monotonic() > deadline:
            return obj
        time.sleep(0.05)


def test_http_load_balancer_serves_real_traffic(dataplane: dict) -> None:
    client = httpx.Client(base_url=str(dataplane["url"]), headers={"X-Project-Id": "p1"},
                          timeout=30)
    subnet = client.get("/v2.0/subnets").json()["subnets"][0]["id"]
    m0, m1 = dataplane["members"]  # type: ignore[misc]
    started = time.monotonic()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "web", "vip_subnet_id": subnet, "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m0, "protocol_port": 8080},
                    {"address": m1, "protocol_port": 8080}]}}]}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    final = _wait(client, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer")
    assert final["provisioning_status"] == "ACTIVE", dataplane["log"].read_text()[-3000:]
    vip = lb["vip_address"]
    seen = []
    deadline = time.monotonic() + 10
    while len(seen) < 4 and time.monotonic() < deadline:
        try:
            seen.append(httpx.get(f"http://{vip}/", timeout=2).text)
        except httpx.HTTPError:
            time.sleep(0.05)
    print(f"POST to serving: {time.monotonic() - started:.2f}s")
    assert sorted(set(seen)) == ["member0", "member1"], _diagnose(dataplane, seen)
    assert seen[0] != seen[1] and seen[1] != seen[2]  # round robin alternates

    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Cascade delete leaves nothing of the amphora behind on the host.
    ip = dataplane["ip"]
    state = dataplane["log"].parent / "state" / "netns" / "amphorae"
    assert not list(state.glob("*")) if state.exists() else True
    assert not [ns for ns in ip.namespaces() if ns.startswith(("stm-", "stt-"))]
    assert not [line for line in ip("-br", "link").splitlines()
                if line.startswith(("sv", "sb")) and not line.startswith("sbm")]
