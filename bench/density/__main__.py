"""bench/density: hundreds of load balancers on one host.

On bench/testbed.py's testbed (``statera up`` with namespace amphorae, bridges, member
namespaces; management and tenant networks sized /22), it:

1. creates ``-n`` load balancers (single-call: LB + HTTP listener + pool + 1 or 2 members),
   at most ``--parallel`` in flight, timing POST -> ACTIVE for each (p50/p99 of the first 20
   and the last 20: does create time degrade as the host fills up?) and the wall time;
2. sends one GET to every VIP from a member namespace (short timeout) and counts answers;
3. with all of them idle, measures memory: each amphora's processes (agent and its haproxy
   master and workers) RSS/PSS/USS, MemAvailable before the first create and now (the host's
   whole cost per load balancer, kernel included), and ``statera up``'s RSS;
4. watches the control plane for ``--watch`` seconds: failover operations, amphorae in
   FAILOVER_STOPPED, the oldest heartbeat (from amphora_health), CPU% of ``statera up`` and of
   all agents and haproxy processes together (from /proc/<pid>/stat);
5. at density: ``--more`` creates (POST -> ACTIVE and -> serving), each followed by a member
   add (-> ACTIVE, -> serving), one at a time; the same is done on the empty host before the
   first create (and deleted again), so both figures come from one run under one load;
6. deletes everything (cascade, ``--parallel`` in flight), times it, and checks that the host
   is clean (no namespace, veth, state directory or process left; every amphora DELETED).

Every count and wait is bounded; the testbed is removed at the end, also after a failure.

    .venv/bin/python -m bench.density [-n 200] [--parallel 4] [--watch 20] [--more 5]
                                      [--keep-workdir]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import percentile
from bench.provision.__main__ import (
    Timeline,
    agent_timeline,
    amphora_homes,
    answered_by,
    memory_kb,
    status_is,
    timed_pair,
    wait_until,
)
from bench.provision.agent_start import cpu_seconds
from bench.testbed import MEMBER_PORT, Testbed

CREATE_TIMEOUT = 180.0   # one create, POST -> ACTIVE, however loaded the host
DELETE_TIMEOUT = 120.0
POLL = 0.1        # status polls of the parallel creates (4 clients at 10/s)


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mem_available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def all_children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (``children()`` reads the main thread's only,
    and the agent starts haproxy from a request thread)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            out += [int(c) for c in
                    Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return out


def arp_table() -> tuple[int, int]:
    """(entries, table_fulls) of the kernel's IPv4 neighbour table: one for the whole host,
    all namespaces together. table_fulls counts entries refused past gc_thresh3."""
    rows = [line.split() for line in
            Path("/proc/net/stat/arp_cache").read_text().splitlines()[1:]]
    return int(rows[0][0], 16), sum(int(r[12], 16) for r in rows)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 10_000:
        p = todo.pop()
        out.append(p)
        todo += all_children(p)
    return out


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += cpu_seconds(p)
    return total


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return -1


# ---- the database, read-only -----------------------------------------------------------------

def db_query(bed: Testbed, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    path = bed.workdir / "state" / "statera.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                            timeout=10)) as conn:
        return list(conn.execute(sql, args))


def heartbeat_ages(bed: Testbed) -> list[float]:
    """Seconds since the last heartbeat of every live amphora (UTC in the database)."""
    now = time.time()
    rows = db_query(bed, "SELECT h.last_update FROM amphora_health h JOIN amphora a "
                         "ON a.id = h.amphora_id WHERE a.status != 'DELETED'")
    out = []
    for (last,) in rows:
        at = datetime.fromisoformat(str(last)).replace(tzinfo=None)
        out.append(now - (at - datetime(1970, 1, 1)).total_seconds())
    return out


def failover_operations(bed: Testbed) -> int:
    return int(db_query(bed, "SELECT count(*) FROM operation WHERE kind LIKE '%failover%'")
               [0][0])


def amphora_statuses(bed: Testbed) -> dict[str, int]:
    return dict(db_query(bed, "SELECT status, count(*) FROM amphora GROUP BY status"))


# ---- results ----------------------------------------------------------------------------------

@dataclass
class Results:
    created: list[tuple[int, float]] = field(default_factory=list)   # (index, POST -> ACTIVE)
    create_errors: list[str] = field(default_factory=list)
    create_wall: float = 0.0
    create_load: str = ""
    answered: int = 0
    asked: int = 0
    serve_seconds: float = 0.0
    arp_fulls: int = 0                                                 # at the start
    vip_failures: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)                    # printed as they come

    def arp(self) -> str:
        entries, fulls = arp_table()
        return (f"  host neighbour table: {entries} entries (all namespaces, permanent "
                f"included); {fulls - self.arp_fulls} refused as 'table overflow' so far")

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)


def ms_row(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<42} (none)"
    return (f"  {name:<42} n={len(values):<4} p50 {percentile(values, 50) * 1000:8.0f} ms   "
            f"p99 {percentile(values, 99) * 1000:8.0f} ms   max {max(values) * 1000:8.0f} ms")


# ---- phases -----------------------------------------------------------------------------------

def lb_body(name: str, subnet: str, members: list[str]) -> dict[str, Any]:
    return {"loadbalancer": {"name": name, "vip_subnet_id": subnet, "listeners": [{
        "protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                {"address": a, "protocol_port": MEMBER_PORT} for a in members]}}]}}


def create_one(bed: Testbed, subnet: str, i: int) -> tuple[dict[str, Any], float]:
    """POST one load balancer (1 member for odd i, 2 for even) and wait for ACTIVE."""
    members = [bed.members[0].address] + ([bed.members[1].address] if i % 2 == 0 else [])
    body = lb_body(f"dens-{i}", subnet, members)
    with bed.api() as client:
        started = time.monotonic()
        r = client.post("/v2/lbaas/loadbalancers", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"create {i}: {r.status_code} {r.text[:300]}")
        lb = r.json()["loadbalancer"]
        deadline = started + CREATE_TIMEOUT
        path = f"/v2/lbaas/loadbalancers/{lb['id']}"
        while True:
            status = client.get(path).json()["loadbalancer"]["provisioning_status"]
            if status == "ACTIVE":
                return lb, time.monotonic() - started
            if status == "ERROR":
                raise RuntimeError(f"create {i}: load balancer {lb['id']} went to ERROR")
            if time.monotonic() > deadline:
                raise RuntimeError(f"create {i}: still {status} after {CREATE_TIMEOUT:.0f} s")
            time.sleep(POLL)


def create_phase(bed: Testbed, count: int, parallel: int, res: Results,
                 lbs: list[dict[str, Any]]) -> None:
    with bed.api() as client:
        subnet = bed.subnet_id(client)
    lock = threading.Lock()
    done = [0]
    stop = threading.Event()

    def work(i: int) -> None:
        if stop.is_set():
            return
        try:
            lb, took = create_one(bed, subnet, i)
        except Exception as exc:
            with lock:
                res.create_errors.append(str(exc))
                if len(res.create_errors) >= 5:
                    stop.set()   # something is broken: stop submitting, report, clean up
            return
        with lock:
            lbs.append(lb)
            res.created.append((i, took))
            done[0] += 1
            if done[0] % 20 == 0 or done[0] == count:
                print(f"  {done[0]:>4}/{count} ACTIVE  (last {took * 1000:6.0f} ms, "
                      f"{time.monotonic() - started:6.1f} s, {load()})", flush=True)

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(work, range(count)))
    res.create_wall = time.monotonic() - started
    res.create_load = load()


VIP_CHECK = """
import concurrent.futures, json, sys, urllib.request
vips = json.loads(sys.argv[1])
def one(vip):
    try:
        with urllib.request.urlopen(f"http://{vip}/", timeout=2) as r:
            return "" if r.status == 200 else f"{vip}: HTTP {r.status}"
    except OSError as exc:
        return f"{vip}: {exc}"
# 4 at a time: the testbed's member servers (http.server) accept with a backlog of 5.
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    print(json.dumps([e for e in pool.map(one, vips) if e]))
"""


def serve_phase(bed: Testbed, lbs: list[dict[str, Any]], res: Results) -> None:
    """One GET per VIP from member 2's namespace (a client on the tenant bridge)."""
    vips = [lb["vip_address"] for lb in lbs]
    started = time.monotonic()
    done = bed.run_in(bed.members[2].namespace, VIP_CHECK, json.dumps(vips), timeout=120)
    res.serve_seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"VIP check failed: {done.stderr[-2000:]}")
    failed = json.loads(done.stdout.strip())
    res.answered, res.asked = len(vips) - len(failed), len(vips)
    res.vip_failures = failed[:5]


@dataclass
class Amp:
    home: Path
    pids: list[int]          # agent first, then its haproxy master and workers


def amphorae(bed: Testbed) -> list[Amp]:
    out = []
    for home in sorted(amphora_homes(bed)):
        try:
            agent = int((home / "agent.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        out.append(Amp(home, descendants(agent)))
    return out


def memory_phase(bed: Testbed, amps: list[Amp], avail_before: int, count: int,
                 res: Results) -> None:
    per_amp = []
    agents = []
    haproxies = []
    procs = 0
    for amp in amps:
        parts = [memory_kb(p) for p in amp.pids]
        procs += len(amp.pids)
        agents.append(parts[0])
        h = tuple(sum(p[i] for p in parts[1:]) for i in range(3))
        haproxies.append(h)
        per_amp.append(tuple(sum(p[i] for p in parts) for i in range(3)))
    n = max(1, len(per_amp))

    def summed(rows: Sequence[tuple[int, ...]], i: int) -> float:
        return sum(r[i] for r in rows) / 1024

    avail_now = mem_available_kb()
    up_pid = bed.up.pid if bed.up else 0
    up_rss = memory_kb(up_pid)
    res.say(f"\nmemory with {len(amps)} idle amphorae ({procs} processes; {load()}):")
    res.say(f"  {'':<30} {'RSS MB':>10} {'PSS MB':>10} {'USS MB':>10}")
    for name, rows in (("all amphorae, summed", per_amp), ("  agents", agents),
                       ("  haproxy (master+workers)", haproxies)):
        res.say(f"  {name:<30} {summed(rows, 0):>10.1f} {summed(rows, 1):>10.1f} "
                f"{summed(rows, 2):>10.1f}")
    res.say(f"  {'per amphora, mean':<30} {summed(per_amp, 0) / n:>10.2f} "
            f"{summed(per_amp, 1) / n:>10.2f} {summed(per_amp, 2) / n:>10.2f}")
    res.say(f"  {'  agent':<30} {summed(agents, 0) / n:>10.2f} {summed(agents, 1) / n:>10.2f} "
            f"{summed(agents, 2) / n:>10.2f}")
    res.say(f"  {'  haproxy':<30} {summed(haproxies, 0) / n:>10.2f} "
            f"{summed(haproxies, 1) / n:>10.2f} {summed(haproxies, 2) / n:>10.2f}")
    used = (avail_before - avail_now) / 1024
    res.say(f"  MemAvailable: {avail_before / 1024:.0f} MB before the first create, "
            f"{avail_now / 1024:.0f} MB now: {used:.0f} MB for {count} load balancers, "
            f"{used / max(1, count):.1f} MB each (kernel included; other processes on the "
            "host move it too)")
    res.say(f"  statera up: RSS {up_rss[0] / 1024:.0f} MB, PSS {up_rss[1] / 1024:.0f} MB, "
            f"{threads_of(up_pid)} threads, {open_fds(up_pid)} open fds")
    res.say(res.arp())


def batch_seconds(bed: Testbed) -> tuple[float, float]:
    """(sum, count) of the health manager's batch-write histogram, from /metrics."""
    text = bed.api().get("/metrics").text
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("statera_health_batch_seconds_sum", "statera_health_batch_seconds_count"):
            values[name] = float(value)
    return (values.get("statera_health_batch_seconds_sum", 0.0),
            values.get("statera_health_batch_seconds_count", 0.0))


def watch_phase(bed: Testbed, amps: list[Amp], seconds: float, res: Results) -> None:
    up_pid = bed.up.pid if bed.up else 0
    amp_pids = [p for a in amps for p in a.pids]
    failovers_before = failover_operations(bed)
    batch0 = batch_seconds(bed)
    t0, up0, amp0 = time.monotonic(), cpu_of([up_pid]), cpu_of(amp_pids)
    worst = 0.0
    ages: list[float] = []
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        ages = heartbeat_ages(bed)
        if ages:
            worst = max(worst, max(ages))
        time.sleep(1.0)
    wall = time.monotonic() - t0
    up_cpu, amp_cpu = cpu_of([up_pid]) - up0, cpu_of(amp_pids) - amp0
    batch1 = batch_seconds(bed)
    batches = batch1[1] - batch0[1]
    statuses = amphora_statuses(bed)
    res.say(f"\ncontrol plane at density, idle, watched {wall:.0f} s ({load()}):")
    res.say(f"  failover operations started: {failover_operations(bed) - failovers_before} "
            f"(on record: {failover_operations(bed)}); amphorae by status: {statuses}")
    res.say(f"  heartbeat age: worst seen {worst:.2f} s; at the end max "
            f"{max(ages, default=float('nan')):.2f} s, median "
            f"{statistics.median(ages) if ages else float('nan'):.2f} s over {len(ages)}")
    res.say(f"  CPU: statera up {100 * up_cpu / wall:.1f} %, agents + haproxy "
            f"{100 * amp_cpu / wall:.1f} % ({100 * amp_cpu / wall / max(1, len(amps)):.2f} % "
            "per amphora) of one core")
    if batches:
        res.say(f"  health manager: {batches:.0f} batch writes, "
                f"{1000 * (batch1[0] - batch0[0]) / batches:.0f} ms each on average")
    res.say(res.arp())


def one_more(bed: Testbed, client: Any, subnet: str, name: str
             ) -> tuple[dict[str, Any], tuple[float, float], tuple[float, float], Timeline]:
    """One create (POST -> ACTIVE, -> serving), then one member add on it (-> ACTIVE,
    -> the new member serving), one at a time on an otherwise idle control plane; the
    member add's timeline from the agent's log."""
    m0, m1, extra = bed.members[0], bed.members[1], bed.members[2]
    started = time.monotonic()
    r = client.post("/v2/lbaas/loadbalancers",
                    json=lb_body(name, subnet, [m0.address, m1.address]))
    if r.status_code != 201:
        raise RuntimeError(f"one more create: {r.status_code} {r.text[:300]}")
    lb = r.json()["loadbalancer"]
    create = timed_pair(
        started,
        status_is(client, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer", "ACTIVE"),
        answered_by(f"http://{lb['vip_address']}/", {m0.name, m1.name}))
    pool_id = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()[
        "loadbalancer"]["pools"][0]["id"]
    posted_at = time.time()
    started = time.monotonic()
    r = client.post(f"/v2/lbaas/pools/{pool_id}/members", json={"member": {
        "address": extra.address, "protocol_port": MEMBER_PORT}})
    if r.status_code != 201:
        raise RuntimeError(f"member add: {r.status_code} {r.text[:300]}")
    member = r.json()["member"]
    add = timed_pair(
        started, status_is(client, f"/v2/lbaas/pools/{pool_id}/members/{member['id']}",
                           "member", "ACTIVE"),
        answered_by(f"http://{lb['vip_address']}/", {extra.name}))
    home = next((h for h in amphora_homes(bed) if (h / "lb" / lb["id"]).exists()), None)
    timeline = agent_timeline(home, posted_at) if home is not None else Timeline()
    return dict(lb), create, add, timeline


def at_density_phase(bed: Testbed, count: int, rounds: int,
                     res: Results) -> list[dict[str, Any]]:
    """``rounds`` more creates, each followed by a member add on it (see one_more)."""
    client = bed.api()
    subnet = bed.subnet_id(client)
    lbs, creates, adds, timelines = [], [], [], []
    for i in range(rounds):
        lb, create, add, timeline = one_more(bed, client, subnet, f"dens-more-{i}")
        lbs.append(lb)
        creates.append(create)
        adds.append(add)
        timelines.append(timeline)
    where = f"at density ({count} load balancers)" if count else "on the empty host"
    res.say(f"\n{where}, {rounds} creates and member adds, one at a time ({load()}):")
    res.say(ms_row("create: POST -> ACTIVE", [c[0] for c in creates]))
    res.say(ms_row("create: POST -> serving", [c[1] for c in creates]))
    res.say(ms_row("member add: POST -> ACTIVE", [a[0] for a in adds]))
    res.say(ms_row("member add: POST -> new member serving", [a[1] for a in adds]))
    uploads = [t.upload for t in timelines if t.upload]
    reloads = [t.start for t in timelines if t.start]
    res.say(ms_row("  agent: cfg PUT answered, after POST", [u[0] for u in uploads]))
    res.say(ms_row("    inside the agent (haproxy -c)", [u[1] for u in uploads]))
    res.say(ms_row("  agent: reload answered, after POST", [u[0] for u in reloads]))
    res.say(ms_row("    inside the agent", [u[1] for u in reloads]))
    res.say("  (bench.provision, empty and quiet host: create p50 615 / 605 ms, member add "
            "p50 238 / 315 ms)")
    return lbs


def delete_phase(bed: Testbed, lbs: list[dict[str, Any]], parallel: int,
                 res: Results, quiet: bool = False) -> list[str]:
    errors: list[str] = []
    took: list[float] = []
    lock = threading.Lock()

    def one(lb: dict[str, Any]) -> None:
        path = f"/v2/lbaas/loadbalancers/{lb['id']}"
        with bed.api() as client:
            started = time.monotonic()
            r = client.delete(path, params={"cascade": "true"})
            try:
                if r.status_code not in (204, 404):
                    raise RuntimeError(f"delete {lb['id']}: {r.status_code} {r.text[:200]}")
                done = wait_until(lambda: client.get(path).status_code == 404, DELETE_TIMEOUT)
            except Exception as exc:
                with lock:
                    errors.append(str(exc))
                return
            with lock:
                took.append(done - started)

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, lbs))
    wall = time.monotonic() - started
    if quiet:
        if errors:
            raise RuntimeError(f"deleting the baseline load balancers: {errors[:3]}")
        return errors
    res.say(f"\ncascade delete of {len(lbs)} load balancers, {parallel} in flight "
            f"({load()}):")
    res.say(ms_row("DELETE -> 404", took))
    res.say(f"  wall {wall:.1f} s ({len(lbs) / wall if wall else 0:.1f} deletes/s); "
            f"errors: {len(errors)}")
    for e in errors[:5]:
        res.say(f"    {e}")
    return errors


def clean_phase(bed: Testbed, amps: list[Amp], res: Results) -> bool:
    deadline = time.monotonic() + 60
    while True:
        left = bed.leftovers()
        running = [p for a in amps for p in a.pids if Path(f"/proc/{p}").exists()]
        statuses = amphora_statuses(bed)
        live = {s: c for s, c in statuses.items() if s != "DELETED"}
        if (not left and not running and not live) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    res.say(f"  host clean: {len(left)} leftovers (namespaces, veths, state dirs), "
            f"{len(running)} amphora processes still running, "
            f"{len(bed.recorded_amphorae())} amphorae on record, not DELETED: {live or 0}")
    for item in left[:10]:
        res.say(f"    left: {item}")
    return not left and not running and not live


# ---- main -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="load balancers (1-400)")
    parser.add_argument("--parallel", type=int, default=4, help="creates in flight (1-16)")
    parser.add_argument("--watch", type=float, default=20.0,
                        help="seconds to watch the idle control plane (1-120)")
    parser.add_argument("--more", type=int, default=5,
                        help="creates + member adds timed one at a time at density (1-20)")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.n <= 400 or not 1 <= args.parallel <= 16 or not 1 <= args.watch <= 120 \
            or not 1 <= args.more <= 20:
        parser.error("-n 1-400, --parallel 1-16, --watch 1-120, --more 1-20")
    workdir = Path(tempfile.mkdtemp(prefix="statera-density-"))
    res = Results()
    lbs: list[dict[str, Any]] = []
    print(f"testbed: /22 management and tenant networks ({load()})", flush=True)
    bed = Testbed.start(workdir, members=3, prefixlen=22)
    ok = False
    try:
        print(f"{args.more} creates and member adds, one at a time, on the empty host first "
              "(same run, same load: the baseline for step 5):", flush=True)
        baseline = at_density_phase(bed, 0, args.more, res)
        delete_phase(bed, baseline, args.parallel, res, quiet=True)
        avail_before = mem_available_kb()
        res.arp_fulls = arp_table()[1]
        print(f"{args.n} single-call creates (LB + HTTP listener + pool + 1-2 members), "
              f"{args.parallel} in flight:", flush=True)
        create_phase(bed, args.n, args.parallel, res, lbs)
        took = [t for _, t in sorted(res.created)]
        res.say(f"\ncreates: {len(took)} ACTIVE of {args.n}, {len(res.create_errors)} failed; "
                f"wall {res.create_wall:.1f} s ({len(took) / res.create_wall:.2f} creates/s; "
                f"at the end {res.create_load})")
        res.say(ms_row("POST -> ACTIVE, first 20", took[:20]))
        res.say(ms_row("POST -> ACTIVE, last 20", took[-20:]))
        res.say(ms_row("POST -> ACTIVE, all", took))
        for e in res.create_errors[:5]:
            res.say(f"    {e}")
        if res.create_errors:
            print(bed.log_tail(3000))
        time.sleep(2.0)   # let the last reloads' old workers leave
        serve_phase(bed, lbs, res)
        res.say(f"\nVIPs answering one GET from a member namespace: {res.answered} of "
                f"{res.asked} ({res.serve_seconds:.1f} s)")
        for failure in res.vip_failures:
            res.say(f"    {failure}")
        amps = amphorae(bed)
        memory_phase(bed, amps, avail_before, len(lbs), res)
        watch_phase(bed, amps, args.watch, res)
        lbs += at_density_phase(bed, len(lbs), args.more, res)
        amps = amphorae(bed)
        errors = delete_phase(bed, lbs, args.parallel, res)
        ok = clean_phase(bed, amps, res) and not errors and not res.create_errors \
            and res.answered == res.asked
    finally:
        bed.close()
        if args.keep_workdir:
            print(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n==== summary ====")
    print("\n".join(res.lines))
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
