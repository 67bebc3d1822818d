"""The REST driver's VRRP calls against httpx.MockTransport, and the process wiring's
renderer for ACTIVE_STANDBY amphorae (keepalived.conf, HAProxy peers). keepalived itself
runs in tests/e2e/test_active_standby.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from statera.cli.amphora_rest import PEER_PORT, HaproxyRenderer
from statera.domain.errors import StepFailed, TemporaryFailure
from statera.domain.model import Amphora, LoadBalancer, Vip
from statera.drivers.amphora.base import VrrpSpec
from statera.drivers.amphora.rest import AgentTimeouts, RestAmphoraDriver
from statera.drivers.certs.local_ca import PkiPaths

LB_ID = "2f4b7f3e-0c1d-4e59-8c0b-1b9f3f7a1e02"
MASTER = Amphora(id="6b0c2c43-58c1-4a4c-9d0e-6a1d0b0c0a01", status="ALLOCATED",
                 role="MASTER", lb_network_ip="192.0.2.10", vrrp_ip="203.0.113.11",
                 vrrp_interface="eth1", vrrp_id=1, vrrp_priority=100)
BACKUP = dataclasses.replace(MASTER, id="6b0c2c43-58c1-4a4c-9d0e-6a1d0b0c0a02",
                             role="BACKUP", lb_network_ip="192.0.2.11",
                             vrrp_ip="203.0.113.12", vrrp_priority=90)
RETIRING = dataclasses.replace(MASTER, id="6b0c2c43-58c1-4a4c-9d0e-6a1d0b0c0a03",
                               status="ERROR", vrrp_ip="203.0.113.13")
SPEC = VrrpSpec(vip_cidr="203.0.113.0/24", vip_gateway="203.0.113.1")


def _lb(*amps: Amphora, topology: str = "ACTIVE_STANDBY") -> LoadBalancer:
    return LoadBalancer(id=LB_ID, project_id="p1", topology=topology,
                        vip=Vip("203.0.113.5", "s", "n", "port"),
                        amphorae=list(amps or (MASTER, BACKUP)))


def _driver(handler, renderer=None, **kw):  # type: ignore[no-untyped-def]
    return RestAmphoraDriver(
        PkiPaths(Path("/nonexistent")), 9443,
        AgentTimeouts(retries=3, retry_interval=0.01, max_retry_interval=0.01),
        httpx.MockTransport(handler), renderer=renderer, sleep=lambda s: None, **kw)


def test_upload_renders_with_the_wired_renderer_then_start_reload_stop() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        return httpx.Response(200 if request.url.path.endswith("upload") else 202,
                              json={"message": "OK", "details": ""})

    renderer = HaproxyRenderer(agent_base_path="/var/lib/statera-agent")
    d = _driver(handler, renderer)
    d.update_vrrp_config(_lb(), MASTER, SPEC)
    d.start_vrrp(MASTER)
    d.reload_vrrp(MASTER)
    d.stop_vrrp(MASTER)
    assert [(m, p) for m, p, _ in seen] == [
        ("PUT", "/1.0/vrrp/upload"), ("PUT", "/1.0/vrrp/start"), ("PUT", "/1.0/vrrp/reload"),
        ("PUT", "/1.0/vrrp/stop")]
    conf = seen[0][2].decode()
    assert "script /var/lib/statera-agent/vrrp/check_haproxy.sh" in conf
    assert "unicast_src_ip 203.0.113.11" in conf and "203.0.113.12\n" in conf
    assert "203.0.113.5/32 dev eth1" in conf


def test_stop_tries_once_and_a_dead_agent_is_a_temporary_failure() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("refused")

    with pytest.raises(TemporaryFailure):
        _driver(handler).stop_vrrp(MASTER)
    assert calls == ["/1.0/vrrp/stop"]


def test_refused_config_and_missing_renderer_are_permanent() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "Invalid keepalived configuration",
                                         "details": "line 3"})

    with pytest.raises(StepFailed, match="Invalid keepalived configuration"):
        _driver(refuse, HaproxyRenderer()).update_vrrp_config(_lb(), MASTER, SPEC)
    with pytest.raises(StepFailed, match="renderer"):
        _driver(refuse).update_vrrp_config(_lb(), MASTER, SPEC)
    # A config the renderer refuses never reaches the agent.
    lone = _lb(MASTER)
    with pytest.raises(StepFailed, match="no peer"):
        _driver(refuse, HaproxyRenderer()).update_vrrp_config(lone, MASTER, SPEC)


def test_get_interface_asks_the_agent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/1.0/interface/203.0.113.11"
        return httpx.Response(200, json={"interface": "eth1"})

    assert _driver(handler).get_interface(MASTER, "203.0.113.11") == "eth1"


def test_haproxy_peers_for_active_standby_only() -> None:
    renderer = HaproxyRenderer()
    opts = renderer.render_options(_lb(MASTER, BACKUP, RETIRING), MASTER)
    assert opts.peers == ((MASTER.id, "203.0.113.11", PEER_PORT),
                          (BACKUP.id, "203.0.113.12", PEER_PORT))
    assert opts.local_peer == MASTER.id
    assert renderer.render_options(_lb(topology="SINGLE"), MASTER).peers == ()
    no_vrrp = dataclasses.replace(MASTER, vrrp_ip=None)
    assert renderer.render_options(_lb(no_vrrp, BACKUP), no_vrrp).peers == ()
    # The rendered haproxy.cfg carries the section.
    cfg = renderer(_lb(), BACKUP).haproxy_cfg
    assert f"localpeer {BACKUP.id}" in cfg
    assert f"peer {MASTER.id} 203.0.113.11:{PEER_PORT}" in cfg
