"""Plugging through the real agent: a veth made inside the agent's test namespace, its peer
in a second test namespace (never the root namespace), traffic between the two."""

from __future__ import annotations

import errno
import json
import secrets
import subprocess
import sys
from collections.abc import Callable

import pytest

from statera.domain.errors import StepFailed, TemporaryFailure
from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.rest import RenderedConfig, RestAmphoraDriver
from statera.wire.agent import FixedIp, HostRoute, PlugNetwork, PlugVip
from tests.integration.agent.conftest import RunningAgent, haproxy_cfg, run

LB_ID = "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"
MakeDriver = Callable[..., RestAmphoraDriver]


def veth(inside: str, peer_ns: str) -> tuple[str, str, str]:
    """A veth pair made in namespace `inside`, its peer moved to `peer_ns`; returns the
    inside name, its MAC and the peer's name."""
    tag = secrets.token_hex(3)
    name, peer = f"st-a{tag}", f"st-b{tag}"
    mac = "fa:16:3e:" + ":".join(secrets.token_hex(1) for _ in range(3))
    run("ip", "-n", inside, "link", "add", name, "address", mac, "type", "veth",
        "peer", "name", peer, "netns", peer_ns)
    return name, mac, peer


def links(ns: str, dev: str) -> dict[str, object]:
    return json.loads(run("ip", "-n", ns, "-j", "addr", "show", "dev", dev))[0]  # type: ignore[no-any-return]


def test_plug_vip_then_serve_it_to_a_peer_namespace(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent],
        make_driver: MakeDriver) -> None:
    amp_ns, peer_ns = netns(), netns()
    agent = start_agent(namespace=amp_ns)
    amp = Amphora(id=agent.amphora_id, status="ALLOCATED", lb_network_ip="127.0.0.1")
    net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    vip, gateway = f"{net}.10", f"{net}.1"
    inside, mac, peer = veth(amp_ns, peer_ns)
    cfg = {"text": haproxy_cfg(f"{vip}:80", "through-the-vip")}
    driver = make_driver(agent, lambda lb, a: RenderedConfig(cfg["text"]))

    body = PlugVip(subnet_cidr=f"{net}.0/24", gateway=gateway, mac_address=mac, mtu=1400,
                   host_routes=[HostRoute(destination="192.0.2.0/24", nexthop=f"{net}.254")],
                   additional_vips=[])
    driver.plug_vip(amp, vip, body)
    link = links(amp_ns, inside)
    assert link["mtu"] == 1400
    assert "UP" in link["flags"]  # type: ignore[operator]
    assert [(a["local"], a["prefixlen"]) for a in link["addr_info"]  # type: ignore[attr-defined]
            if a["family"] == "inet"] == [(vip, 24)]
    routes = run("ip", "-n", amp_ns, "route", "show")
    assert f"default via {gateway} dev {inside}" in routes
    assert f"192.0.2.0/24 via {net}.254 dev {inside}" in routes
    assert f"from {vip} lookup 100" in run("ip", "-n", amp_ns, "rule", "show")
    assert f"default via {gateway}" in run("ip", "-n", amp_ns, "route", "show", "table", "100")
    assert driver.interface_of(amp, vip) == inside

    driver.plug_vip(amp, vip, body)                           # the same again: fine
    with pytest.raises(StepFailed, match="409") as conflict:  # another VIP on that port
        driver.plug_vip(amp, f"{net}.11", body)
    assert not isinstance(conflict.value, TemporaryFailure)
    other = body.model_copy(update={"mac_address": "fa:16:3e:00:00:00"})
    with pytest.raises(StepFailed, match="404"):
        driver.plug_vip(amp, vip, other)
    with pytest.raises(StepFailed, match="404"):
        driver.interface_of(amp, f"{net}.99")

    # The peer namespace plays the tenant network: the gateway and a client.
    run("ip", "-n", peer_ns, "addr", "add", f"{gateway}/24", "dev", peer)
    run("ip", "-n", peer_ns, "link", "set", peer, "up")
    lb = LoadBalancer(id=LB_ID, project_id="p1", topology="SINGLE", amphorae=[amp])
    driver.apply_config(lb, amp)
    got = subprocess.run(["ip", "netns", "exec", peer_ns, "curl", "-s", "--max-time", "5",
                          f"http://{vip}/"], capture_output=True, text=True, timeout=15,
                         check=False)
    assert got.stdout == "through-the-vip"
    driver.remove_config(lb, amp)


def test_plug_network_adds_fixed_ips_and_routes(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent],
        make_driver: MakeDriver) -> None:
    amp_ns, peer_ns = netns(), netns()
    agent = start_agent(namespace=amp_ns)
    amp = Amphora(id=agent.amphora_id, status="ALLOCATED", lb_network_ip="127.0.0.1")
    inside, mac, peer = veth(amp_ns, peer_ns)
    driver = make_driver(agent)
    body = PlugNetwork(mac_address=mac, mtu=1450, fixed_ips=[
        FixedIp(ip_address="172.31.7.5", subnet_cidr="172.31.7.0/24",
                host_routes=[HostRoute(destination="198.51.100.0/24", nexthop="172.31.7.1")]),
        FixedIp(ip_address="fd00:7::5", subnet_cidr="fd00:7::/64")])
    driver.plug_network(amp, body)
    addrs = {(a["local"], a["prefixlen"])
             for a in links(amp_ns, inside)["addr_info"]  # type: ignore[attr-defined]
             if a.get("scope") == "global"}
    assert addrs == {("172.31.7.5", 24), ("fd00:7::5", 64)}
    assert "198.51.100.0/24 via 172.31.7.1" in run("ip", "-n", amp_ns, "route", "show")
    assert "default" not in run("ip", "-n", amp_ns, "route", "show")
    driver.plug_network(amp, body)                            # idempotent
    assert driver.interface_of(amp, "fd00:7::5") == inside

    run("ip", "-n", peer_ns, "addr", "add", "172.31.7.1/24", "dev", peer)
    run("ip", "-n", peer_ns, "link", "set", peer, "up")
    # Nothing listens there: a refused connection (not a timeout) proves the path works.
    probe = ("import socket; s = socket.socket(); s.settimeout(3); "
             "print(s.connect_ex(('172.31.7.5', 9)))")
    got = subprocess.run(["ip", "netns", "exec", peer_ns, sys.executable, "-c", probe],
                         capture_output=True, text=True, timeout=15, check=False)
    assert got.stdout.strip() == str(errno.ECONNREFUSED), got.stdout + got.stderr
