"""The renderer's haproxy.cfg, through the driver, on the real agent: the paths it names
(stats socket, server state, certificates, crt-list) are where the agent keeps them."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from statera.cli.amphora_rest import HaproxyRenderer
from statera.domain.model import Amphora, Listener, LoadBalancer, Member, Pool, Vip
from statera.drivers.amphora.rest import RestAmphoraDriver
from statera.drivers.certs.local_ca import Pki
from tests.integration.agent.conftest import RunningAgent

MakeDriver = Callable[..., RestAmphoraDriver]


def test_a_rendered_tls_load_balancer_serves_in_the_namespace(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent], pki: Pki,
        make_driver: MakeDriver, tmp_path: Path) -> None:
    ns = netns()
    agent = start_agent(namespace=ns)
    amp = Amphora(id=agent.amphora_id, status="ALLOCATED", lb_network_ip="127.0.0.1")
    tenant_pem, _ = pki.issue_server_cert("www.example.com")
    pool = Pool(id=str(uuid.uuid4()), protocol="HTTP", lb_algorithm="ROUND_ROBIN",
                members=[Member(id=str(uuid.uuid4()), address="127.0.0.9", protocol_port=8081)])
    listeners = [
        # Small limits: HAProxy needs ~2.5 file descriptors per connection and this host's
        # hard limit is 20000.
        Listener(id=str(uuid.uuid4()), protocol="HTTP", protocol_port=80,
                 default_pool_id=pool.id, connection_limit=1000),
        Listener(id=str(uuid.uuid4()), protocol="TERMINATED_HTTPS", protocol_port=443,
                 default_pool_id=pool.id, default_tls_container_ref="https://secrets/v1/a",
                 connection_limit=1000),
    ]
    lb = LoadBalancer(id=str(uuid.uuid4()), project_id="p1", topology="SINGLE",
                      vip=Vip("127.0.0.5", "subnet", "net", "port"), listeners=listeners,
                      pools=[pool], amphorae=[amp])
    fetched: list[str] = []

    def secrets(ref: str) -> bytes:
        fetched.append(ref)
        return tenant_pem

    driver = make_driver(agent, HaproxyRenderer(str(agent.base)), secrets=secrets)
    driver.apply_config(lb, amp)
    driver.apply_config(lb, amp)                       # again: a reload, same result
    assert fetched == ["https://secrets/v1/a"] * 2
    assert (agent.base / "certs" / lb.id / f"{listeners[1].id}.crt-list").exists()
    assert (agent.base / lb.id / "haproxy.sock").exists()

    def curl(*args: str) -> str:
        return subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "5",
                               *args], capture_output=True, text=True, timeout=15,
                              check=False).stdout

    (tmp_path / "index.html").write_text("from the member")
    member = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                               "8081", "--bind", "127.0.0.9"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while curl("http://127.0.0.9:8081/") != "from the member":
            assert time.monotonic() < deadline, "the member did not start"
            time.sleep(0.1)
        assert curl("http://127.0.0.5/") == "from the member"
        assert curl("-k", "--resolve", "www.example.com:443:127.0.0.5",
                    "https://www.example.com/") == "from the member"
    finally:
        member.kill()
        member.wait()
    stats = {s.listener_id: s for s in driver.get_stats(lb, amp)}
    assert stats[listeners[0].id].total_connections >= 1
    assert stats[listeners[1].id].total_connections >= 1
    driver.remove_config(lb, amp)
    assert not (agent.base / lb.id).exists()
    assert not (agent.base / "certs" / lb.id).exists()
