"""bench/provision/agent_start: how fast the amphora agent starts and how much memory it holds.

Spawns ``python -m statera.agent CONF`` (as the netns compute driver does, but on 127.0.0.1
in the host namespace so it needs no bridge), times spawn -> first successful ``GET /`` over
mutual TLS, then uploads a one-frontend haproxy.cfg, starts it, and reads the RSS of the agent
and of haproxy (master + worker) from /proc. Repeats ``-n`` times and prints p50/p99.

    .venv/bin/python -m bench.provision.agent_start [-n 10]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import free_port, percentile
from statera.drivers.certs.local_ca import Pki, init_pki
from statera.wire.agent import AgentConfigFile, render_agent_config

HAPROXY = "/usr/sbin/haproxy"
POLL = 0.005


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def haproxy_pids(base: Path) -> list[int]:
    """Every haproxy master under ``base`` (from its pid file) and its workers."""
    pids = []
    for pid_file in base.glob("*/haproxy.pid"):
        with contextlib.suppress(ValueError, OSError):
            master = int(pid_file.read_text().split()[0])
            pids += [master, *children(master)]
    return pids


@dataclass
class Sample:
    ready: float        # spawn -> first 200 on GET / (s)
    ready_cpu: float    # CPU time the agent used until then (s): the same under any load
    first_start: float  # PUT haproxy.cfg + PUT reload (s)
    agent_rss: int      # kB, idle after the haproxy start
    haproxy_rss: int    # kB, master + worker(s)


def client_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.paths.server_ca_cert))
    ctx.load_cert_chain(str(pki.paths.client_cert))
    return ctx


def call(ctx: ssl.SSLContext, port: int, amp: str, method: str, path: str,
         body: bytes | None = None) -> tuple[int, bytes]:
    """One request on a new connection; the TLS server name is the amphora id, as the
    controller's driver sends it."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.sock = ctx.wrap_socket(raw, server_hostname=amp)
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
        raw.close()


def one_run(pki: Pki, ctx: ssl.SSLContext, python: str, src: str | None = None) -> Sample:
    amp = str(uuid.uuid4())
    home = Path(tempfile.mkdtemp(prefix="st-bs-"))
    process: subprocess.Popen[bytes] | None = None
    base = home / "base"
    try:
        certs = home / "certs"
        certs.mkdir(mode=0o700)
        server = certs / "server.pem"
        fd = os.open(server, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pki.issue_server_cert(amp)[0])
        (certs / "client_ca.pem").write_bytes(pki.client_ca_pem())
        port = free_port()
        conf = home / "agent.conf"
        conf.write_text(render_agent_config(AgentConfigFile(
            amphora_id=amp, server_cert=str(server), client_ca=str(certs / "client_ca.pem"),
            base_path=str(base), bind_host="127.0.0.1", bind_port=port,
            haproxy_cmd=HAPROXY)))
        env = dict(os.environ, PYTHONPATH=src) if src else None
        with open(home / "agent.log", "wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen([python, "-m", "statera.agent", str(conf)],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
        deadline = started + 30
        while True:
            try:
                status, _ = call(ctx, port, amp, "GET", "/")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError("the agent did not start:\n"
                                   + (home / "agent.log").read_text())
            time.sleep(POLL)
        ready = time.perf_counter() - started
        ready_cpu = cpu_seconds(process.pid)

        lb = str(uuid.uuid4())
        cfg = (f"global\n    maxconn 1000\ndefaults\n    mode http\n    timeout connect 5s\n"
               f"    timeout client 5s\n    timeout server 5s\nfrontend fe\n"
               f"    bind 127.0.0.1:{free_port()}\n"
               f"    http-request return status 200 content-type text/plain string ok\n")
        t0 = time.perf_counter()
        status, body = call(ctx, port, amp, "PUT", f"/1.0/loadbalancer/{amp}/{lb}/haproxy",
                            cfg.encode())
        assert status == 202, body
        status, body = call(ctx, port, amp, "PUT", f"/1.0/loadbalancer/{lb}/reload")
        assert status == 202, body
        first_start = time.perf_counter() - t0
        time.sleep(0.3)  # settle: idle agent and haproxy
        return Sample(ready, ready_cpu, first_start, rss_kb(process.pid),
                      sum(rss_kb(p) for p in haproxy_pids(base)))
    finally:
        leftovers = haproxy_pids(base)
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10, help="agent starts to time (1-100)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--compare-src", metavar="DIR",
                        help="also run the agent from another source tree (its src/ "
                             "directory), alternating runs, e.g. an older checkout")
    args = parser.parse_args()
    if not 1 <= args.n <= 100:
        parser.error("-n must be 1-100")
    if not Path(HAPROXY).exists():
        sys.exit(f"needs {HAPROXY}")
    pki_dir = Path(tempfile.mkdtemp(prefix="st-bs-pki-"))
    try:
        pki = init_pki(pki_dir)
        ctx = client_context(pki)
        samples, other = [], []
        for _ in range(args.n):
            samples.append(one_run(pki, ctx, args.python))
            if args.compare_src:
                other.append(one_run(pki, ctx, args.python, args.compare_src))
    finally:
        shutil.rmtree(pki_dir, ignore_errors=True)
    print_samples(f"this tree's agent, {args.n} runs ({args.python} -m statera.agent)", samples)
    if other:
        print_samples(f"\nthe agent from {args.compare_src}, {args.n} runs, alternating",
                      other)


def print_samples(title: str, samples: list[Sample]) -> None:

    def row(name: str, values: list[float], unit: str, scale: float) -> str:
        return (f"{name:<40} p50 {percentile(values, 50) * scale:8.1f} {unit}   "
                f"p99 {percentile(values, 99) * scale:8.1f} {unit}")

    print(title)
    print(row("spawn -> first GET / over mTLS", [s.ready for s in samples], "ms", 1000))
    print(row("  agent CPU time until then", [s.ready_cpu for s in samples], "ms", 1000))
    print(row("first haproxy.cfg upload + start", [s.first_start for s in samples], "ms",
              1000))
    print(row("agent RSS, idle, one LB", [s.agent_rss for s in samples], "MB", 1 / 1024))
    print(row("haproxy RSS (master + worker)", [s.haproxy_rss for s in samples], "MB",
              1 / 1024))
    print(row("agent + haproxy RSS", [s.agent_rss + s.haproxy_rss for s in samples], "MB",
              1 / 1024))


if __name__ == "__main__":
    main()
