"""The agent's routes, through its own server over mutual TLS in the test process (the
refusals of bad clients are tested against a real agent process in tests/integration/agent)."""

from __future__ import annotations

import hashlib
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from statera.agent.app import create_app
from statera.wire.agent import AgentConfigFile, render_agent_config
from tests.unit.agent.conftest import AgentEnv, free_port, haproxy_cfg, serving

LB = "5f0c8a3e-1d2b-4c3d-9e4f-5a6b7c8d9e01"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _get(port: int) -> str:
    return subprocess.run(["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{port}/"],
                          capture_output=True, text=True, check=False).stdout


def test_version_info_and_details(agent_env: AgentEnv) -> None:
    c = agent_env.client
    assert c.get("/").json() == {"api_version": "1.0"}
    info = c.get("/1.0/info").json()
    assert info["uuid"] == agent_env.amp
    assert info["api_version"] == "1.0"
    assert info["haproxy_version"].startswith("2.")
    details = c.get("/1.0/details").json()
    assert details["memory"]["total"] > 0
    assert details["haproxy_count"] == 0
    assert details["listeners"] == []
    assert details["topology"] == "SINGLE"
    assert len(details["load"]) == 3


def test_errors_are_message_and_details(agent_env: AgentEnv) -> None:
    r = agent_env.client.get("/1.0/nothing-here")
    assert r.status_code == 404
    assert set(r.json()) == {"message", "details"}
    r = agent_env.client.put(f"/1.0/loadbalancer/{LB}/explode")
    assert r.status_code == 400
    assert "explode" in r.json()["details"]


def test_config_upload_refuses_another_amphora_and_bad_ids(agent_env: AgentEnv) -> None:
    c, cfg = agent_env.client, haproxy_cfg(free_port())
    assert c.put(f"/1.0/loadbalancer/{uuid.uuid4()}/{LB}/haproxy", content=cfg
                 ).status_code == 400
    for bad in ("not-a-uuid", "..", f"{LB}x", "%2e%2e"):
        r = c.put(f"/1.0/loadbalancer/{agent_env.amp}/{bad}/haproxy", content=cfg)
        assert r.status_code in (400, 404), bad
    assert not (Path(agent_env.config.base_path)).exists() or \
        list(Path(agent_env.config.base_path).iterdir()) == []


def test_invalid_config_is_refused_with_haproxy_output_and_the_old_one_kept(
        agent_env: AgentEnv) -> None:
    c = agent_env.client
    url = f"/1.0/loadbalancer/{agent_env.amp}/{LB}/haproxy"
    bad = "global\n    no-such-keyword 1\n"
    r = c.put(url, content=bad)
    assert r.status_code == 400
    assert "no-such-keyword" in r.json()["details"]
    assert c.get(f"/1.0/loadbalancer/{LB}/haproxy").status_code == 404
    assert c.get("/1.0/listeners").json() == []

    good = haproxy_cfg(free_port())
    r = c.put(url, content=good)
    assert r.status_code == 202
    assert r.headers["etag"] == hashlib.md5(good.encode()).hexdigest()
    assert c.put(url, content=bad).status_code == 400
    r = c.get(f"/1.0/loadbalancer/{LB}/haproxy")
    assert r.text == good
    assert r.headers["etag"] == hashlib.md5(good.encode()).hexdigest()
    cfg = Path(agent_env.config.base_path) / LB / "haproxy.cfg"
    assert _mode(cfg) == 0o600
    assert _mode(cfg.parent) == 0o700
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["haproxy.cfg"]


def test_start_reload_stop_and_delete(agent_env: AgentEnv) -> None:
    c, port = agent_env.client, free_port()
    c.put(f"/1.0/loadbalancer/{agent_env.amp}/{LB}/haproxy", content=haproxy_cfg(port, "one"))
    assert c.get("/1.0/listeners").json() == [{"status": "STOPPED", "uuid": LB,
                                               "type": "HAPROXY"}]
    r = c.put(f"/1.0/loadbalancer/{LB}/reload")
    assert r.status_code == 202, r.text  # not running: starts
    assert _get(port) == "one"
    assert c.get("/1.0/listeners").json()[0]["status"] == "ACTIVE"
    assert c.get("/1.0/details").json()["haproxy_count"] == 1
    master = agent_env.agent.haproxy.master_pid(LB)

    c.put(f"/1.0/loadbalancer/{agent_env.amp}/{LB}/haproxy", content=haproxy_cfg(port, "two"))
    assert c.put(f"/1.0/loadbalancer/{LB}/reload").status_code == 202
    assert _get(port) == "two"
    assert agent_env.agent.haproxy.master_pid(LB) == master  # same master, new worker
    state = Path(agent_env.config.base_path) / LB / "servers-state"
    assert state.exists() and _mode(state) == 0o600

    stats = c.get(f"/1.0/loadbalancer/{LB}/stats").json()
    assert [s["name"] for s in stats] == ["fe"]
    assert stats[0]["total_connections"] >= 1

    assert c.put(f"/1.0/loadbalancer/{LB}/stop").status_code == 202
    assert c.get("/1.0/listeners").json()[0]["status"] == "STOPPED"
    assert _get(port) == ""
    assert c.put(f"/1.0/loadbalancer/{LB}/start").status_code == 202
    assert _get(port) == "two"

    assert c.delete(f"/1.0/listeners/{LB}").status_code == 200
    assert _get(port) == ""
    assert not (Path(agent_env.config.base_path) / LB).exists()
    assert c.get("/1.0/listeners").json() == []
    assert c.delete(f"/1.0/listeners/{LB}").status_code == 200  # idempotent


def test_start_without_config_is_404(agent_env: AgentEnv) -> None:
    assert agent_env.client.put(f"/1.0/loadbalancer/{LB}/start").status_code == 404


def test_certificates_are_private_files_with_strict_names(agent_env: AgentEnv) -> None:
    c = agent_env.client
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    url = f"/1.0/loadbalancer/{LB}/certificates"
    assert c.put(f"{url}/a1b2.pem", content=pem).status_code == 200
    path = Path(agent_env.config.base_path) / "certs" / LB / "a1b2.pem"
    assert path.read_bytes() == pem
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert c.get(f"{url}/a1b2.pem").json() == {"md5sum": hashlib.md5(pem).hexdigest()}
    assert c.put(f"{url}/l.crt-list", content=b"/x/a1b2.pem\n").status_code == 200
    for bad in (".hidden.pem", "..pem", "a..b.pem", "a.txt", "a b.pem", "%2e%2e%2fx.pem",
                "x" * 200 + ".pem"):
        r = c.put(f"{url}/{bad}", content=pem)
        assert r.status_code in (400, 404), bad
    assert c.put(f"{url}/nopem.pem", content=b"hello").status_code == 400
    assert c.put("/1.0/loadbalancer/nope/certificates/a.pem", content=pem).status_code == 400
    assert c.delete(f"{url}/a1b2.pem").status_code == 200
    assert c.get(f"{url}/a1b2.pem").status_code == 404
    assert c.delete(f"{url}/a1b2.pem").status_code == 200
    assert sorted(p.name for p in path.parent.iterdir()) == ["l.crt-list"]


def test_plugging_is_refused_without_a_namespace(agent_env: AgentEnv) -> None:
    c = agent_env.client
    body = {"subnet_cidr": "203.0.113.0/24", "gateway": "203.0.113.1",
            "mac_address": "fa:16:3e:00:00:01", "mtu": 1500}
    r = c.post("/1.0/plug/vip/203.0.113.5", json=body)
    assert r.status_code == 403
    assert "namespace" in r.json()["details"]
    r = c.post("/1.0/plug/network", json={"mac_address": "fa:16:3e:00:00:02",
                                           "fixed_ips": []})
    assert r.status_code == 403
    assert c.get("/1.0/interface/127.0.0.1").status_code == 403


def test_plug_bodies_are_validated(agent_env: AgentEnv) -> None:
    c = agent_env.client
    bad = {"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01; rm -rf /"}
    r = c.post("/1.0/plug/vip/203.0.113.5", json=bad)
    assert r.status_code == 400
    assert "rm -rf" not in r.text
    good = {"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01"}
    assert c.post("/1.0/plug/vip/not-an-ip", json=good).status_code == 400
    assert c.post("/1.0/plug/vip/203.0.113.5", json={**good, "mtu": 10}).status_code == 400
    assert c.get("/1.0/interface/-j").status_code == 400


def test_agent_config_update_applies_the_mutable_options(agent_env: AgentEnv) -> None:
    c, conf = agent_env.client, agent_env.config
    new = AgentConfigFile(**{**conf.__dict__, "heartbeat_interval": 3,
                             "controller_ip_port_list": ("192.0.2.1:5555",),
                             "bind_port": 1234})
    r = c.put("/1.0/config", content=render_agent_config(new))
    assert r.status_code == 202
    live = agent_env.agent.config
    assert live.heartbeat_interval == 3
    assert live.controller_ip_port_list == ("192.0.2.1:5555",)
    assert live.bind_port == conf.bind_port  # applies at the next start
    assert "bind_port = 1234" in agent_env.config_path.read_text()
    assert _mode(agent_env.config_path) == 0o600

    other = AgentConfigFile(**{**conf.__dict__, "amphora_id": str(uuid.uuid4())})
    assert c.put("/1.0/config", content=render_agent_config(other)).status_code == 400
    r = c.put("/1.0/config", content="[health_manager]\nheartbeat_key = s3cr3t\n")
    assert r.status_code == 400
    assert "s3cr3t" not in r.text


def test_server_certificate_rotation(agent_env: AgentEnv) -> None:
    c = agent_env.client
    path = Path(agent_env.config.server_cert)
    old = path.read_bytes()
    foreign, _ = agent_env.pki.issue_server_cert(str(uuid.uuid4()))
    r = c.put("/1.0/certificate", content=foreign)
    assert r.status_code == 400
    assert "another amphora" in r.json()["details"]
    cert_only = foreign[foreign.index(b"-----BEGIN CERTIFICATE"):]
    assert c.put("/1.0/certificate", content=cert_only).status_code == 400
    assert path.read_bytes() == old
    assert agent_env.rotated == []

    new, _ = agent_env.pki.issue_server_cert(agent_env.amp)
    r = c.put("/1.0/certificate", content=new)
    assert r.status_code == 202
    assert path.read_bytes() == new
    assert _mode(path) == 0o600
    assert agent_env.rotated == [path]
    assert "PRIVATE" not in r.text


def test_app_from_a_bare_config(agent_env: AgentEnv, tmp_path: Path) -> None:
    conf = AgentConfigFile(amphora_id=str(uuid.uuid4()), base_path=str(tmp_path))
    with serving(create_app(conf), agent_env.config.server_cert, agent_env.config.client_ca,
                 agent_env.pki) as client:
        assert client.get("/1.0/listeners").json() == []


@pytest.mark.parametrize("route", ["/docs", "/openapi.json", "/redoc"])
def test_no_documentation_routes(agent_env: AgentEnv, route: str) -> None:
    assert agent_env.client.get(route).status_code == 404


def test_wrong_method_is_405_with_allow_and_bad_json_is_400(agent_env: AgentEnv) -> None:
    c = agent_env.client
    r = c.get(f"/1.0/loadbalancer/{LB}/reload")
    assert r.status_code == 405
    assert r.headers["allow"] == "PUT"
    assert r.json() == {"message": "Method Not Allowed", "details": ""}
    cert = f"/1.0/loadbalancer/{LB}/certificates/a.pem"
    r = c.post(cert)
    assert r.status_code == 405 and r.headers["allow"] == "PUT, GET, DELETE"
    r = c.post("/1.0/plug/network", content=b'{"mac_address": ')
    assert r.status_code == 400
    assert r.json() == {"message": "Invalid request", "details": "the body is not valid JSON"}
    r = c.post("/1.0/plug/network", content=b'\xff\xfe')
    assert r.status_code == 400


def test_bodies_over_their_limit_are_refused(agent_env: AgentEnv) -> None:
    c = agent_env.client
    r = c.put(f"/1.0/loadbalancer/{LB}/certificates/a.pem", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 400
    assert r.json()["details"] == "the body is too large"
    assert c.get("/").status_code == 200  # a new connection serves on
