"""The netns compute driver with real namespaces, veths and a bridge of the test's own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from statera.drivers.compute.base import AmphoraBuild
from statera.drivers.compute.netns import NetnsComputeDriver
from statera.drivers.netns.amphora_ns import AmphoraNames
from statera.drivers.netns.host import BridgeSpec
from statera.drivers.netns.ip import Ip


def _driver(tmp_path: Path, bridge: BridgeSpec, ip: Ip) -> NetnsComputeDriver:
    return NetnsComputeDriver(
        state_dir=tmp_path, mgmt_bridge=bridge.name, mgmt_cidr=bridge.cidr,
        mgmt_host_address=bridge.host_address,
        agent_command=lambda home: ["sleep", "300"], ip=ip)


def test_build_status_delete_leave_nothing(tmp_path: Path, test_bridge: BridgeSpec,
                                           ip: Ip) -> None:
    driver = _driver(tmp_path, test_bridge, ip)
    amp = str(uuid.uuid4())
    names = AmphoraNames(amp)
    try:
        first = driver.build(AmphoraBuild(amphora_id=amp, server_pem=b"secret"))
        again = driver.build(AmphoraBuild(amphora_id=amp, server_pem=b"secret"))
        assert first == again and first.status == "ACTIVE"
        assert {names.mgmt_ns, names.tenant_ns} <= set(ip.namespaces())
        assert driver.status(amp).status == "ACTIVE"
        assert (driver.amphora_dir(amp) / "server.pem").stat().st_mode & 0o777 == 0o600
        # The management namespace reaches the host's address on the bridge, and only that.
        with socket.socket() as server:
            server.bind((test_bridge.host_address, 0))
            server.listen(1)
            port = server.getsockname()[1]
            probe = subprocess.run(
                ["ip", "netns", "exec", names.mgmt_ns, sys.executable, "-c",
                 f"import socket; socket.create_connection(('{test_bridge.host_address}', "
                 f"{port}), timeout=3).close()"], capture_output=True, text=True, timeout=20)
        assert probe.returncode == 0, probe.stderr
        routes = ip.in_ns(names.mgmt_ns, "route", "show")
        assert "default" not in routes
    finally:
        driver.delete(amp)
    assert not {names.mgmt_ns, names.tenant_ns} & set(ip.namespaces())
    assert not ip.link_exists(names.mgmt_veth)
    assert not driver.amphora_dir(amp).exists()
    assert driver.addresses.owners() == {}
    assert driver.status(amp).status == "DELETED"
    driver.delete(amp)  # idempotent


def test_addresses_are_unique(tmp_path: Path, test_bridge: BridgeSpec, ip: Ip) -> None:
    driver = _driver(tmp_path, test_bridge, ip)
    amps = [str(uuid.uuid4()) for _ in range(3)]
    try:
        addrs = {driver.build(AmphoraBuild(amphora_id=a)).lb_network_ip for a in amps}
        assert len(addrs) == 3 and test_bridge.host_address not in addrs
    finally:
        for a in amps:
            driver.delete(a)


def _neighbour(ip: Ip, address: str, dev: str, ns: str | None = None) -> dict[str, object]:
    args = ("neigh", "show", address, "dev", dev)
    rows = json.loads(ip.in_ns(ns, "-j", *args) if ns else ip("-j", *args) or "[]")
    return rows[0] if rows else {}


def test_management_neighbours_are_permanent_both_ways(tmp_path: Path,
                                                       test_bridge: BridgeSpec,
                                                       ip: Ip) -> None:
    """Linux has one neighbour table for every namespace; permanent entries do not count
    against its gc_thresh3 limit, so hundreds of amphorae's heartbeats are not dropped as
    'neighbor table overflow'. A reused address gets the new amphora's MAC; a delete removes
    the host's entry."""
    driver = _driver(tmp_path, test_bridge, ip)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    bridge_mac = Path(f"/sys/class/net/{test_bridge.name}/address").read_text().strip()
    try:
        address = driver.build(AmphoraBuild(amphora_id=first)).lb_network_ip
        assert address is not None
        names = AmphoraNames(first)
        host_side = _neighbour(ip, address, test_bridge.name)
        assert host_side.get("lladdr") == names.mac(0)
        assert "PERMANENT" in host_side.get("state", [])  # type: ignore[operator]
        inside = _neighbour(ip, test_bridge.host_address, "eth0", names.mgmt_ns)
        assert inside.get("lladdr") == bridge_mac
        assert "PERMANENT" in inside.get("state", [])  # type: ignore[operator]
        driver.delete(first)
        assert _neighbour(ip, address, test_bridge.name) == {}
        # The next amphora takes the freed address: the host's entry names its MAC.
        assert driver.build(AmphoraBuild(amphora_id=second)).lb_network_ip == address
        assert _neighbour(ip, address, test_bridge.name).get("lladdr") == \
            AmphoraNames(second).mac(0)
    finally:
        driver.delete(first)
        driver.delete(second)
    assert _neighbour(ip, address, test_bridge.name) == {}


def test_unhealthy_sees_a_dead_haproxy_and_a_killed_agent(tmp_path: Path,
                                                          test_bridge: BridgeSpec,
                                                          ip: Ip) -> None:
    driver = _driver(tmp_path, test_bridge, ip)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        driver.build(AmphoraBuild(amphora_id=a))
        driver.build(AmphoraBuild(amphora_id=b))
        assert driver.unhealthy([a, b]) == []
        # b's haproxy: its pid file names a process that has exited.
        gone = subprocess.Popen(["true"])
        gone.wait()
        lb_dir = driver.amphora_dir(b) / "lb" / str(uuid.uuid4())
        lb_dir.mkdir(parents=True)
        (lb_dir / "haproxy.pid").write_text(f"{gone.pid}\n")
        assert driver.unhealthy([a, b]) == [b]
        # a's agent is killed: dead whether or not it is still an unreaped zombie.
        os.kill(int((driver.amphora_dir(a) / "agent.pid").read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 5
        while driver.unhealthy([a, b]) != [a, b] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert driver.unhealthy([a, b]) == [a, b]
    finally:
        driver.delete(a)
        driver.delete(b)
