"""Fixtures for the agent's unit tests: an agent app on a temporary base path, with the real
haproxy binary; haproxy serves only on 127.0.0.1 (no namespace, no plugging here)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from statera.agent.app import Agent, build_agent, create_app
from statera.agent.config import ConfigHolder
from statera.drivers.certs.local_ca import Pki, init_pki
from statera.wire.agent import AgentConfigFile, render_agent_config

HAPROXY = "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_cfg(port: int, body: str = "ok", address: str = "127.0.0.1") -> str:
    return f"""global
    maxconn 100
    httpclient.ssl.verify none
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind {address}:{port}
    http-request return status 200 content-type text/plain string {body}
"""


def kill_haproxies(base: Path) -> None:
    """Stop any haproxy a test left behind, by the pid its master wrote."""
    for pid_file in base.glob("*/haproxy.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, OSError):
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(pid_file.parent).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)


@dataclass
class AgentEnv:
    pki: Pki
    config: AgentConfigFile
    config_path: Path
    agent: Agent
    client: TestClient
    rotated: list[Path] = field(default_factory=list)

    @property
    def amp(self) -> str:
        return self.config.amphora_id


@pytest.fixture
def agent_env(tmp_path: Path) -> Iterator[AgentEnv]:
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed")
    pki = init_pki(tmp_path / "pki")
    amp = str(uuid.uuid4())
    certs = tmp_path / "certs"
    certs.mkdir(mode=0o700)
    server_pem, _ = pki.issue_server_cert(amp)
    (certs / "server.pem").write_bytes(server_pem)
    (certs / "client_ca.pem").write_bytes(pki.client_ca_pem())
    conf = AgentConfigFile(amphora_id=amp, server_cert=str(certs / "server.pem"),
                           client_ca=str(certs / "client_ca.pem"),
                           base_path=str(tmp_path / "base"), bind_host="127.0.0.1",
                           haproxy_cmd=HAPROXY, heartbeat_key="00" * 32)
    conf_path = tmp_path / "agent.conf"
    conf_path.write_text(render_agent_config(conf))
    rotated: list[Path] = []
    agent = build_agent(ConfigHolder(conf, conf_path), on_certificate=rotated.append)
    agent.haproxy.start_timeout = agent.haproxy.reload_timeout = 5.0
    client = TestClient(create_app(agent))
    try:
        yield AgentEnv(pki, conf, conf_path, agent, client, rotated)
    finally:
        for lb in agent.haproxy.lb_ids():
            with contextlib.suppress(Exception):
                agent.haproxy.stop(lb)
        kill_haproxies(tmp_path / "base")
