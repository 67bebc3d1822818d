"""bench/provision: how fast a load balancer is ready, on the real data plane.

On bench/testbed.py's testbed (``statera up`` with namespace amphorae, bridges, member
namespaces), it times, one after the other:

- ``-n`` single-call creates (LB + HTTP listener + pool + 2 members): POST -> ACTIVE, and
  POST -> the first request through the VIP answered by a member;
- ``-m`` member adds on the first load balancer: POST member -> the member ACTIVE, and
  -> the new member answering through the VIP (each add is then deleted again);
- cascade deletes: DELETE -> 404;

and prints p50/p99 of each, the memory (RSS, PSS, USS from /proc) of every idle amphora's
agent and haproxy, and where a create spends its time, from the agents' own logs (millisecond
timestamps: spawn, listening, first ``GET /``, plug VIP, config upload with ``haproxy -c``,
haproxy start). Counts and waits are bounded; everything is removed at the end.

    .venv/bin/python -m bench.provision [-n 20] [-m 20] [--keep-workdir]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentile
from bench.provision.agent_start import children
from bench.testbed import MEMBER_PORT, Testbed

WAIT = 30.0     # longest wait for any one state
POLL = 0.01


# ---- memory ---------------------------------------------------------------------------------

def memory_kb(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) of a process in kB, from smaps_rollup; zeros if it is gone."""
    values = {"Rss": 0, "Pss": 0, "Private_Clean": 0, "Private_Dirty": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values["Rss"], values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


@dataclass
class AmphoraMemory:
    agent: tuple[int, int, int]
    haproxy: tuple[int, int, int]   # master + workers, summed
    haproxy_processes: int

    @property
    def total(self) -> tuple[int, int, int]:
        (a0, a1, a2), (h0, h1, h2) = self.agent, self.haproxy
        return a0 + h0, a1 + h1, a2 + h2


def amphora_memory(home: Path) -> AmphoraMemory | None:
    try:
        agent_pid = int((home / "agent.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    pids = []
    for pid_file in (home / "lb").glob("*/haproxy.pid"):
        try:
            master = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        pids += [master, *children(master)]
    parts = [memory_kb(p) for p in pids]
    total = tuple(sum(p[i] for p in parts) for i in range(3))
    return AmphoraMemory(memory_kb(agent_pid), (total[0], total[1], total[2]), len(pids))


# ---- the agent's log: a create's timeline ---------------------------------------------------

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+\s+\S+: (.*)$")
_ACCESS = re.compile(r'^\S+ "(\w+) (\S+)" (\d+) ([\d.]+) ms$')


def _clock_ticks_epoch(pid: int) -> float | None:
    """When a process started, as a Unix time (10 ms resolution)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        btime = next(int(line.split()[1]) for line in
                     Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return btime + start_ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Timeline:
    """Seconds after the POST of each thing the agent saw (None if it did not show)."""

    spawned: float | None = None
    listening: float | None = None
    first_get: float | None = None
    plug_vip: tuple[float, float] | None = None        # (end, duration)
    upload: tuple[float, float] | None = None
    start: tuple[float, float] | None = None


def agent_timeline(home: Path, posted_at: float) -> Timeline:
    t = Timeline()
    try:
        pid = int((home / "agent.pid").read_text().strip())
        lines = (home / "agent.log").read_text(errors="replace").splitlines()
    except (OSError, ValueError):
        return t
    started = _clock_ticks_epoch(pid)
    t.spawned = started - posted_at if started is not None else None
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").timestamp() - posted_at
        if at < 0:
            continue  # before this POST (an earlier change of the same load balancer)
        text = m[2]
        if t.listening is None and " listening on " in text:
            t.listening = at
        a = _ACCESS.match(text)
        if a is None:
            continue
        method, path, took = a[1], a[2], float(a[4]) / 1000
        if method == "GET" and path == "/" and t.first_get is None:
            t.first_get = at
        elif method == "POST" and "/plug/vip/" in path and t.plug_vip is None:
            t.plug_vip = (at, took)
        elif method == "PUT" and path.endswith("/haproxy") and t.upload is None:
            t.upload = (at, took)
        elif method == "PUT" and path.endswith(("/reload", "/start")) and t.start is None:
            t.start = (at, took)
    return t


# ---- waiting --------------------------------------------------------------------------------

def wait_until(check: Any, timeout: float = WAIT) -> float:
    """Calls check() every POLL seconds until it is true; the monotonic time it became so."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(POLL)


def status_is(client: httpx.Client, path: str, key: str, wanted: str) -> Any:
    def check() -> bool:
        obj = client.get(path).json()[key]
        if obj["provisioning_status"] == "ERROR":
            raise RuntimeError(f"{path} went to ERROR")
        return bool(obj["provisioning_status"] == wanted)
    return check


def answered_by(url: str, names: set[str]) -> Any:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=0.5).text in names
        except httpx.HTTPError:
            return False
    return check


def timed_pair(started: float, first: Any, second: Any) -> tuple[float, float]:
    """Waits for two conditions at once (two threads); seconds from `started` to each."""
    out: dict[str, float] = {}
    errors: list[BaseException] = []

    def run(name: str, check: Any) -> None:
        try:
            out[name] = wait_until(check) - started
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("a", first)),
               threading.Thread(target=run, args=("b", second))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return out["a"], out["b"]


# ---- the phases -----------------------------------------------------------------------------

@dataclass
class Results:
    create_active: list[float] = field(default_factory=list)
    create_serving: list[float] = field(default_factory=list)
    member_active: list[float] = field(default_factory=list)
    member_serving: list[float] = field(default_factory=list)
    member_delete_active: list[float] = field(default_factory=list)
    delete_gone: list[float] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    member_timelines: list[Timeline] = field(default_factory=list)
    memory: list[AmphoraMemory] = field(default_factory=list)


def amphora_homes(bed: Testbed) -> set[Path]:
    root = bed.workdir / "state" / "netns" / "amphorae"
    return set(root.iterdir()) if root.exists() else set()


def wait_for_spare(client: httpx.Client, timeout: float = 60.0) -> None:
    """Block until housekeeping has a spare amphora ready (status READY, no LB)."""
    deadline = time.monotonic() + timeout
    while not any(a["status"] == "READY" and not a["loadbalancer_id"] for a in client.get(
            "/v2/octavia/amphorae").json()["amphorae"]):
        if time.monotonic() > deadline:
            raise RuntimeError("no spare amphora became ready")
        time.sleep(0.05)


def create_phase(bed: Testbed, client: httpx.Client, count: int, res: Results,
                 spares: int = 0) -> list[dict[str, Any]]:
    subnet = bed.subnet_id(client)
    m0, m1 = bed.members[0], bed.members[1]
    lbs = []
    for i in range(count):
        if spares:
            wait_for_spare(client)
        before = amphora_homes(bed)
        posted_at = time.time()
        started = time.monotonic()
        r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
            "name": f"prov-{i}", "vip_subnet_id": subnet, "listeners": [{
                "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                    "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                        {"address": m0.address, "protocol_port": MEMBER_PORT},
                        {"address": m1.address, "protocol_port": MEMBER_PORT}]}}]}})
        if r.status_code != 201:
            raise RuntimeError(f"create {i}: {r.status_code} {r.text}")
        lb = r.json()["loadbalancer"]
        lbs.append(lb)
        active, serving = timed_pair(
            started,
            status_is(client, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer", "ACTIVE"),
            answered_by(f"http://{lb['vip_address']}/", {m0.name, m1.name}))
        res.create_active.append(active)
        res.create_serving.append(serving)
        new = set() if spares else amphora_homes(bed) - before  # spares: built earlier
        for home in new:
            res.timelines.append(agent_timeline(home, posted_at))
        print(f"  create {i + 1:>3}/{count}: ACTIVE {active * 1000:7.1f} ms, "
              f"serving {serving * 1000:7.1f} ms", flush=True)
    return lbs


def member_phase(bed: Testbed, client: httpx.Client, lb: dict[str, Any], count: int,
                 res: Results) -> None:
    extra = bed.members[2]
    pool_id = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()[
        "loadbalancer"]["pools"][0]["id"]
    lb_path = f"/v2/lbaas/loadbalancers/{lb['id']}"
    home = next(h for h in amphora_homes(bed) if (h / "lb" / lb["id"]).exists())
    for i in range(count):
        posted_at = time.time()
        started = time.monotonic()
        r = client.post(f"/v2/lbaas/pools/{pool_id}/members", json={"member": {
            "address": extra.address, "protocol_port": MEMBER_PORT}})
        if r.status_code != 201:
            raise RuntimeError(f"member add {i}: {r.status_code} {r.text}")
        member = r.json()["member"]
        member_path = f"/v2/lbaas/pools/{pool_id}/members/{member['id']}"
        active, serving = timed_pair(
            started, status_is(client, member_path, "member", "ACTIVE"),
            answered_by(f"http://{lb['vip_address']}/", {extra.name}))
        res.member_active.append(active)
        res.member_serving.append(serving)
        res.member_timelines.append(agent_timeline(home, posted_at))
        started = time.monotonic()
        if client.delete(member_path).status_code != 204:
            raise RuntimeError(f"member delete {i} refused")
        res.member_delete_active.append(
            wait_until(status_is(client, lb_path, "loadbalancer", "ACTIVE")) - started)
        print(f"  member {i + 1:>3}/{count}: ACTIVE {active * 1000:7.1f} ms, "
              f"serving {serving * 1000:7.1f} ms", flush=True)


def delete_phase(client: httpx.Client, lbs: list[dict[str, Any]], res: Results) -> None:
    for lb in lbs:
        path = f"/v2/lbaas/loadbalancers/{lb['id']}"
        started = time.monotonic()
        client.delete(path, params={"cascade": "true"})
        res.delete_gone.append(wait_until(lambda p=path: client.get(p).status_code == 404)
                               - started)


# ---- report ---------------------------------------------------------------------------------

def _row(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<44} (none)"
    return (f"{name:<44} {len(values):>4} {percentile(values, 50) * 1000:>9.1f} "
            f"{percentile(values, 99) * 1000:>9.1f} {statistics.fmean(values) * 1000:>9.1f}")


def _mem_row(name: str, values: list[tuple[int, int, int]]) -> str:
    def med(i: int) -> float:
        return statistics.median(v[i] for v in values) / 1024
    return f"{name:<44} {med(0):>8.1f} {med(1):>8.1f} {med(2):>8.1f}"


def report(res: Results) -> None:
    print(f"\n{'time (ms)':<44} {'n':>4} {'p50':>9} {'p99':>9} {'mean':>9}")
    print(_row("create: POST -> ACTIVE", res.create_active))
    print(_row("create: POST -> serving through the VIP", res.create_serving))
    print(_row("member add: POST -> member ACTIVE", res.member_active))
    print(_row("member add: POST -> new member serving", res.member_serving))
    print(_row("member delete: DELETE -> LB ACTIVE", res.member_delete_active))
    print(_row("cascade delete: DELETE -> 404", res.delete_gone))

    tl = res.timelines

    def series(get: Any) -> list[float]:
        return [v for v in (get(t) for t in tl) if v is not None]

    print("\nwhere a create's time goes (from the agents' logs; seconds after the POST):")
    for name, values in (
            ("agent spawned (ip netns exec python)", series(lambda t: t.spawned)),
            ("agent listening", series(lambda t: t.listening)),
            ("first GET / answered", series(lambda t: t.first_get)),
            ("plug VIP answered", series(lambda t: t.plug_vip and t.plug_vip[0])),
            ("haproxy.cfg upload answered", series(lambda t: t.upload and t.upload[0])),
            ("haproxy start answered", series(lambda t: t.start and t.start[0]))):
        print(_row(f"  {name}", values))
    print("time spent inside the agent (ms):")
    for name, values in (
            ("  listening - spawned", [t.listening - t.spawned for t in tl
                                       if t.listening is not None and t.spawned is not None]),
            ("  plug VIP", series(lambda t: t.plug_vip and t.plug_vip[1])),
            ("  upload (haproxy -c, write, fsync)", series(lambda t: t.upload and t.upload[1])),
            ("  haproxy start", series(lambda t: t.start and t.start[1]))):
        print(_row(name, values))

    mt = res.member_timelines
    print("\nwhere a member add's time goes (from the agent's log; ms after the POST):")
    for name, values in (
            ("  haproxy.cfg upload answered", [t.upload[0] for t in mt if t.upload]),
            ("  haproxy reload answered", [t.start[0] for t in mt if t.start]),
            ("  of which in the agent: upload", [t.upload[1] for t in mt if t.upload]),
            ("  of which in the agent: reload", [t.start[1] for t in mt if t.start])):
        print(_row(name, values))

    if res.memory:
        print(f"\nmemory per idle amphora, median of {len(res.memory)} (MB)"
              f"{'':<7} {'RSS':>8} {'PSS':>8} {'USS':>8}")
        print(_mem_row("agent", [m.agent for m in res.memory]))
        print(_mem_row(f"haproxy ({res.memory[0].haproxy_processes} processes)",
                       [m.haproxy for m in res.memory]))
        print(_mem_row("agent + haproxy", [m.total for m in res.memory]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="single-call creates (1-100)")
    parser.add_argument("-m", type=int, default=20, help="member adds (0-200)")
    parser.add_argument("--spares", type=int, default=0,
                        help="keep this many spare amphorae ([house_keeping] "
                             "spare_amphora_pool_size); each create waits for one (0-10)")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.n <= 100 or not 0 <= args.m <= 200:
        parser.error("-n must be 1-100 and -m 0-200")
    workdir = Path(tempfile.mkdtemp(prefix="statera-prov-"))
    res = Results()
    if not 0 <= args.spares <= 10:
        parser.error("--spares must be 0-10")
    spare_conf = (f"[house_keeping]\nspare_amphora_pool_size = {args.spares}\n"
                  "spare_check_interval = 0.2\n") if args.spares else ""
    bed = Testbed.start(workdir, members=3, extra_conf=spare_conf)
    try:
        client = bed.api()
        how = f", each taking a ready spare amphora (pool of {args.spares})" \
            if args.spares else ""
        print(f"{args.n} single-call creates (LB + listener + pool + 2 members), one at a "
              f"time{how}:")
        lbs = create_phase(bed, client, args.n, res, args.spares)
        time.sleep(1.0)  # let the last reloads' old workers leave
        res.memory = [m for m in (amphora_memory(h) for h in sorted(amphora_homes(bed)))
                      if m is not None]
        if args.m:
            print(f"{args.m} member adds (each deleted again) on the first load balancer:")
            member_phase(bed, client, lbs[0], args.m, res)
        delete_phase(client, lbs, res)
        report(res)
    finally:
        bed.close()
        if args.keep_workdir:
            print(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
