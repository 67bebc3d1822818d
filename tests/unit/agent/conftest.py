"""Fixtures for the agent's unit tests: the agent's server (mutual TLS, on 127.0.0.1 and a free
port, in a thread of the test process) on a temporary base path, with the real haproxy
binary; haproxy serves only on 127.0.0.1 (no namespace, no plugging here). ``client`` is an
httpx client with the controller's certificate."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from statera.agent.app import Agent, App, build_agent, create_app
from statera.agent.config import ConfigHolder
from statera.agent.main import tls_context
from statera.agent.server import TlsHttpServer, listen
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
    client: httpx.Client
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
    try:
        with serving(create_app(agent), conf.server_cert, conf.client_ca, pki) as client:
            yield AgentEnv(pki, conf, conf_path, agent, client, rotated)
    finally:
        for lb in agent.haproxy.lb_ids():
            with contextlib.suppress(Exception):
                agent.haproxy.stop(lb)
        kill_haproxies(tmp_path / "base")


def controller_context(pki: Pki) -> ssl.SSLContext:
    """The controller's side, checking the chain but not the name (tests connect by IP;
    the name check is tests/integration/agent's business)."""
    ctx = ssl.create_default_context(cafile=str(pki.paths.server_ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(pki.paths.client_cert))
    return ctx


@contextlib.contextmanager
def serving(app: App, server_pem: str, client_ca: str, pki: Pki) -> Iterator[httpx.Client]:
    """`app` behind the agent's TLS server on a free loopback port, in a thread."""
    server = TlsHttpServer(listen("127.0.0.1", 0), tls_context(server_pem, client_ca), app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"grace": 2.0},
                              daemon=True)
    thread.start()
    host, port = server.address
    try:
        with httpx.Client(base_url=f"https://{host}:{port}", verify=controller_context(pki),
                          timeout=30) as client:
            yield client
    finally:
        server.stop()
        thread.join(10)
