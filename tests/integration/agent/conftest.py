"""A real agent (a subprocess: its own HTTP/1.1 server, mutual TLS, on 127.0.0.1 and a free
port) with a PKI from init_pki, real haproxy, and network namespaces the tests create.
Everything made here is removed afterwards, even when a test fails: processes by their pid,
namespaces by name."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from statera.drivers.amphora.rest import AgentTimeouts, RenderedConfig, RestAmphoraDriver
from statera.drivers.certs.local_ca import Pki, init_pki
from statera.wire.agent import AgentConfigFile, render_agent_config

HAPROXY = "/usr/sbin/haproxy"


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or not Path(HAPROXY).exists():
        if os.environ.get("CI"):
            raise AssertionError("agent integration tests need root, iproute2 and haproxy")
        pytest.skip("agent integration tests need root, iproute2 and haproxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stdout}{done.stderr}")
    return done.stdout


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_namespace_processes(ns: str) -> None:
    """Every process in a namespace this test made is one of ours."""
    out = run("ip", "netns", "pids", ns, check=False)
    for pid in out.split():
        _kill_pid(int(pid))


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """Makes uniquely named namespaces, each with its loopback up."""
    need_root()
    made: list[str] = []

    def make() -> str:
        name = f"statera-t-{secrets.token_hex(4)}"
        run("ip", "netns", "add", name)
        made.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in reversed(made):
            kill_namespace_processes(name)
            run("ip", "netns", "del", name, check=False)


@dataclass
class RunningAgent:
    amphora_id: str
    port: int
    process: subprocess.Popen[bytes]
    config: AgentConfigFile
    config_path: Path
    log: Path
    base: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def haproxy_pids(self) -> list[int]:
        """Masters and their workers, from the masters' pid files."""
        pids = []
        for pid_file in self.base.glob("*/haproxy.pid"):
            with contextlib.suppress(ValueError, OSError):
                master = int(pid_file.read_text().split()[0])
                pids.append(master)
                children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
                pids += [int(c) for c in children]
        return pids


def _wait_listening(agent: RunningAgent, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.process.poll() is not None:
            raise AssertionError(f"the agent exited:\n{agent.log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", agent.port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the agent did not listen in time:\n{agent.log.read_text()}")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return init_pki(tmp_path / "pki")


@pytest.fixture
def start_agent(pki: Pki) -> Iterator[Callable[..., RunningAgent]]:
    """start_agent(namespace="", server_pem=None, amphora_id=None) -> RunningAgent"""
    need_root()
    started: list[RunningAgent] = []
    homes: list[Path] = []

    def start(namespace: str = "", server_pem: bytes | None = None,
              amphora_id: str | None = None) -> RunningAgent:
        amp = amphora_id or str(uuid.uuid4())
        # Short: HAProxy refuses socket paths over 97 bytes, and pytest's tmp_path is deep.
        home = Path(tempfile.mkdtemp(prefix="st-ag-"))
        homes.append(home)
        certs = home / "certs"
        certs.mkdir(parents=True, mode=0o700)
        pem = server_pem if server_pem is not None else pki.issue_server_cert(amp)[0]
        fd = os.open(certs / "server.pem", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        (certs / "client_ca.pem").write_bytes(pki.client_ca_pem())
        conf = AgentConfigFile(
            amphora_id=amp, server_cert=str(certs / "server.pem"),
            client_ca=str(certs / "client_ca.pem"), base_path=str(home / "base"),
            bind_host="127.0.0.1", bind_port=free_port(), haproxy_cmd=HAPROXY,
            haproxy_namespace=namespace, controller_ip_port_list=("127.0.0.1:5555",),
            heartbeat_key=pki.heartbeat_key().hex(), debug=True)
        conf_path = home / "agent.conf"
        fd = os.open(conf_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(render_agent_config(conf))
        log = home / "agent.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "statera.agent", str(conf_path)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        agent = RunningAgent(amp, conf.bind_port, process, conf, conf_path, log,
                             home / "base")
        started.append(agent)
        _wait_listening(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            haproxies = agent.haproxy_pids()
            agent.process.terminate()
            try:
                agent.process.wait(10)
            except subprocess.TimeoutExpired:
                agent.process.kill()
                agent.process.wait(10)
            for pid in haproxies:
                _kill_pid(pid)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_driver(pki: Pki, start_agent: Callable[..., RunningAgent],
                ) -> Iterator[Callable[..., RestAmphoraDriver]]:
    """make_driver(agent, renderer=None, **kw): a driver for that agent's port, closed
    (its keep-alive connections too) before the agents stop."""
    made: list[RestAmphoraDriver] = []

    def make(agent: RunningAgent, renderer: Callable[..., RenderedConfig] | None = None,
             **kw: object) -> RestAmphoraDriver:
        timeouts = AgentTimeouts(connect=5, read=30, retries=3, retry_interval=0.2,
                                 max_retry_interval=0.5)
        driver = RestAmphoraDriver(pki.paths, agent.port, timeouts, renderer=renderer,
                                   **kw)  # type: ignore[arg-type]
        made.append(driver)
        return driver

    try:
        yield make
    finally:
        for driver in made:
            driver.close()


def haproxy_cfg(bind: str, body: str) -> str:
    return f"""global
    maxconn 2000
    httpclient.ssl.verify none
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind {bind}
    http-request return status 200 content-type text/plain string {body}
"""
