"""Pieces of the data-plane benchmarks: fast members, the hand-tuned HAProxy peer, a Statera
load balancer made through the API, wrk runs and the CPU the proxies spend.

Everything here runs on a ``bench.testbed.Testbed``: namespaces on its tenant bridge, processes
started by PID and ended by ``Testbed.close()``.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.testbed import MEMBER_PORT, Member, Testbed, in_namespace

HAPROXY = "/usr/sbin/haproxy"
PROXY_PORT = 80

# A member as fast as HAProxy itself: answers every request with its name, keeps connections
# alive, logs nothing. One thread, like a small backend server would have here.
MEMBER_CFG = """\
global
    nbthread 1
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive

frontend member
    bind :{port}
    http-request return status 200 content-type text/plain string {name}
"""

# The hand-tuned peer: what an operator who knows HAProxy writes for plain HTTP round robin.
# No logging, keep-alive both sides, idle server connections reused for any client
# (http-reuse always: the members are ours and stateless), generous limits, the same
# timeouts Statera renders by default.
HAND_TUNED_CFG = """\
global
    nbthread {nbthread}
    maxconn 4000
    tune.maxaccept 64

defaults
    mode http
    no log
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout http-keep-alive 50s
    option http-keep-alive
    http-reuse always

frontend hand-tuned
    bind :{port}
    maxconn 2000
    default_backend members

backend members
    balance roundrobin
{servers}
"""


def member_config(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.haproxy.cfg"
    path.write_text(MEMBER_CFG.format(port=MEMBER_PORT, name=name))
    return path


def hand_tuned_config(workdir: Path, members: list[Member], nbthread: int) -> Path:
    servers = "\n".join(f"    server {m.name} {m.address}:{MEMBER_PORT} maxconn 1000"
                        for m in members)
    path = workdir / "hand-tuned.haproxy.cfg"
    path.write_text(HAND_TUNED_CFG.format(nbthread=nbthread, port=PROXY_PORT,
                                          servers=servers))
    return path


def check_config(path: Path) -> None:
    result = subprocess.run([HAPROXY, "-c", "-q", "-f", str(path)], capture_output=True,
                            text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"haproxy refuses {path}: {result.stdout}{result.stderr}")


def add_fast_members(bed: Testbed, count: int) -> list[Member]:
    """``count`` member namespaces each running a one-thread HAProxy that answers 200."""
    hosts = list(bed.tenant_net.hosts())
    members = []
    for i in range(count):
        name = f"fast{i}"
        cfg = member_config(bed.workdir, name)
        check_config(cfg)
        member = bed.add_namespace(name, str(hosts[99 + i]))
        bed.start_member(member, [HAPROXY, "-db", "-f", str(cfg)], own_session=True)
        members.append(member)
    return members


def add_hand_tuned(bed: Testbed, members: list[Member], nbthread: int) -> Member:
    """The hand-tuned HAProxy in a namespace of its own on the tenant bridge."""
    cfg = hand_tuned_config(bed.workdir, members, nbthread)
    check_config(cfg)
    proxy = bed.add_namespace("hand-tuned", str(list(bed.tenant_net.hosts())[89]))
    # A session of its own, as the agent starts HAProxy: with autogroup scheduling a proxy
    # sharing the client's session gets its CPU on different terms (measured: ~20% more
    # requests/s), which would make the comparison unfair.
    bed.start_member(proxy, [HAPROXY, "-db", "-f", str(cfg)], port=PROXY_PORT,
                     own_session=True)
    return proxy


def create_statera_lb(bed: Testbed, members: list[Member],
                      name: str = "bench") -> tuple[str, str]:
    """An HTTP listener, ROUND_ROBIN pool and ``members`` through the API, in one call;
    returns (load balancer id, VIP) once ACTIVE."""
    client = bed.api()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": name, "vip_subnet_id": bed.subnet_id(client), "listeners": [{
            "protocol": "HTTP", "protocol_port": PROXY_PORT, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m.address, "protocol_port": MEMBER_PORT}
                    for m in members]}}]}})
    if r.status_code != 201:
        raise RuntimeError(f"create load balancer: {r.status_code} {r.text}")
    lb = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"], timeout=60)
    return lb["id"], lb["vip_address"]


def rendered_config(bed: Testbed, lb_id: str) -> Path:
    """The haproxy.cfg the agent installed for ``lb_id`` (in the amphora's state dir)."""
    found = sorted((bed.workdir / "state" / "netns" / "amphorae").glob(f"*/lb/{lb_id}/haproxy.cfg"))
    if not found:
        raise RuntimeError(f"no rendered haproxy.cfg for load balancer {lb_id}")
    return found[0]


# ---- wrk ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Socket errors (connect, read, write, timeout) plus non-2xx/3xx answers."""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m[1]) * _UNITS[m[2]]


def parse_wrk(text: str) -> WrkResult:
    """The figures of ``wrk --latency`` output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (done and rps and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{text}")
    errors = 0
    if sock := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                         r"timeout (\d+)", text):
        errors += sum(int(x) for x in sock.groups())
    if bad := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(bad[1])
    return WrkResult(requests=int(done[1]), seconds=_ms(done[2] + done[3]) / 1000,
                     rps=float(rps[1]), p50_ms=_ms(p50[1]), p99_ms=_ms(p99[1]),
                     errors=errors)


def run_wrk(client: Member, url: str, duration: float, connections: int,
            threads: int) -> WrkResult:
    """wrk from the client namespace; bounded by ``duration`` (and a hard timeout)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
            "--latency", "--timeout", "5s", url]
    out = subprocess.run(in_namespace(client.namespace, argv), capture_output=True,
                         text=True, timeout=duration + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr}{out.stdout}")
    return parse_wrk(out.stdout)


# ---- CPU of the proxies ---------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(config: Path) -> float:
    """User + system CPU, so far, of every live process whose command line names ``config``
    (an HAProxy master and its workers, or a single -db process)."""
    needle = os.fsencode(str(config))
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / _TICK
