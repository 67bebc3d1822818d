"""A small cluster of real Statera processes for the control-plane reliability scenarios.

``Cluster`` runs ``statera api`` and any number of ``statera worker`` processes on one
database (SQLite in a temporary state dir, or a throwaway MariaDB/PostgreSQL database), with
the noop drivers writing every call to a JSON-lines call log. Tests kill, stop and restart
those processes and then judge the outcome from three sources:

* the REST API (what a tenant sees),
* the database, read directly from the test process (operations, amphorae, the tree),
* the noop call log (what would have happened on real infrastructure, and by which pid).

Everything a cluster starts is killed by PID when its fixture ends; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from bench.common import NOOP_DRIVERS

from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.worker.flows import FLOWS
from tests.conftest import server_db

T = TypeVar("T")

STATERA = str(Path(sys.executable).with_name("statera"))
PENDING = frozenset({"PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE"})
OPEN_OPS = frozenset({"PENDING", "RUNNING"})

# Which driver calls each action step of the load balancer flows makes (for "no side effect
# twice": a step recorded as done must never call its driver methods again).
STEP_METHODS: dict[str, tuple[str, ...]] = {
    "BuildAmphorae": ("compute.build",),
    "WaitAmphoraeReady": ("amphora.wait_ready",),
    "PlugVip": ("network.plug_vip",),
    "ApplyConfig": ("network.plug_member_networks", "network.update_allowed_cidrs",
                    "amphora.apply_config"),
}
METHOD_STEP = {meth: step for step, meths in STEP_METHODS.items() for meth in meths}

# ---- small helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], T], timeout: float,
             interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} "
                                 f"(last: {last!r})")
        time.sleep(interval)


def burst(n: int, fn: Callable[[int], T], timeout: float = 90.0) -> list[T]:
    """Run ``fn(0) .. fn(n-1)`` in ``n`` threads released together; results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = fn(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.1))
    assert not any(t.is_alive() for t in threads), f"burst of {n} did not end in {timeout}s"
    failed = [e for e in errors if e is not None]
    if failed:
        raise AssertionError(f"{len(failed)} of {n} requests raised, first: {failed[0]!r}") \
            from failed[0]
    return results


def single_call_body(subnet_id: str, name: str, members: int = 2) -> dict[str, Any]:
    """A load balancer with its whole tree: listener, pool, members, health monitor."""
    return {"loadbalancer": {
        "vip_subnet_id": subnet_id, "name": name,
        "listeners": [{
            "protocol": "HTTP", "protocol_port": 80,
            "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": f"10.210.0.{50 + i}", "protocol_port": 8080}
                            for i in range(members)],
                "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3},
            },
        }],
    }}


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL if the test process dies (even by kill -9), so
    no statera process outlives the run that started it."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    """One `statera` process started by a cluster."""

    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    spawned_at: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def owns(self, owner: str | None) -> bool:
        """Whether an operation's ``owner`` names this process (``host:pid:suffix``)."""
        return owner is not None and f":{self.pid}:" in owner

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class Cluster:
    root: Path
    db_url: str
    project: str = field(default_factory=lambda: f"rel-{uuid.uuid4().hex[:8]}")
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    base_url: str = ""
    torn_call_lines: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.call_log = self.root / "calls.jsonl"
        base = {
            "STATERA_DEFAULT__STATE_PATH": str(self.root),
            "STATERA_DATABASE__CONNECTION": self.db_url,
            "STATERA_NOOP_DRIVERS__CALL_LOG": str(self.call_log),
            "STATERA_CONTROLLER_WORKER__POLL_INTERVAL": "0.1",
            "STATERA_TASK_FLOW__JOBBOARD_EXPIRATION_TIME": "3",
            "STATERA_DATABASE__POOL_SIZE": "10",
            **NOOP_DRIVERS,
        }
        self.env = {**base, **self.env}
        self._db: Database | None = None
        self._client: httpx.Client | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """`statera db upgrade`, done in this process (already imported: much faster)."""
        upgrade(self.db_url)

    def _spawn(self, role: str, args: list[str], env: dict[str, str]) -> Proc:
        n = sum(1 for p in self.procs if p.role.split("#")[0] == role)
        name = f"{role}#{n + 1}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("STATERA_")}
        full.update(self.env)
        full.update(env)
        full["PYTHONUNBUFFERED"] = "1"
        log = self.root / f"{name.replace('#', '-')}.log"
        with open(log, "ab") as fh:
            popen = subprocess.Popen([STATERA, *args], env=full, stdout=fh,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root, preexec_fn=_die_with_parent)
        proc = Proc(name, popen, log, time.monotonic())
        self.procs.append(proc)
        return proc

    def start_api(self, **env: str) -> Proc:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        return self._spawn("api", ["api"], {"STATERA_API_SETTINGS__BIND_PORT": str(port),
                                            **env})

    def start_worker(self, **env: str) -> Proc:
        return self._spawn("worker", ["worker"], env)

    def wait_api(self, api: Proc, timeout: float = 60.0) -> None:
        def answering() -> bool:
            if not api.alive():
                raise AssertionError(f"{api.role} exited ({api.popen.returncode}):\n"
                                     f"{api.tail()}")
            try:
                return httpx.get(self.base_url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the API to answer GET /", answering, timeout, interval=0.1)

    def wait_worker(self, worker: Proc, timeout: float = 60.0) -> None:
        """Until the worker logs that its loop runs."""
        def started() -> bool:
            if not worker.alive():
                raise AssertionError(f"{worker.role} exited ({worker.popen.returncode}):\n"
                                     f"{worker.tail()}")
            return " started (" in worker.log_text()

        wait_for(f"{worker.role} to start", started, timeout, interval=0.1)

    def kill(self, proc: Proc, sig: int = signal.SIGKILL, timeout: float = 15.0) -> float:
        """Send ``sig`` to ``proc`` (by PID) and wait for it to exit; returns seconds taken."""
        started = time.monotonic()
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{proc.role} (pid {proc.pid}) still running {timeout}s after "
                                 f"signal {sig}:\n{proc.tail()}") from None
        return time.monotonic() - started

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        if self._client is not None:
            self._client.close()
        if self._db is not None:
            self._db.dispose()

    def report(self) -> str:
        """The tail of every process's log, for a failing test's output."""
        return "\n".join(f"---- {p.role} (pid {p.pid}, exit {p.popen.returncode}) ----\n"
                         f"{p.tail(40)}" for p in self.procs)

    # -- the API -----------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, timeout=60.0,
                headers={"X-Project-Id": self.project},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))
        return self._client

    def subnet_id(self) -> str:
        r = self.client.get("/v2.0/subnets")
        assert r.status_code == 200, r.text
        return str(r.json()["subnets"][0]["id"])

    def create_lb(self, body: dict[str, Any], project: str | None = None) -> httpx.Response:
        headers = {"X-Project-Id": project} if project else None
        return self.client.post("/v2/lbaas/loadbalancers", json=body, headers=headers)

    # -- the database ------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.db_url, pool_size=2, max_overflow=2)
        return self._db

    def operations(self, lb_ids: Iterable[str] | None = None) -> list[m.Operation]:
        stmt = sa.select(m.Operation).order_by(m.Operation.created_at, m.Operation.id)
        if lb_ids is not None:
            stmt = stmt.where(m.Operation.load_balancer_id.in_(list(lb_ids)))
        with self.db.read() as s:
            return list(s.scalars(stmt))

    def load_balancers(self, lb_ids: Iterable[str]) -> dict[str, m.LoadBalancer]:
        with self.db.read() as s:
            rows = s.scalars(sa.select(m.LoadBalancer).where(
                m.LoadBalancer.id.in_(list(lb_ids))))
            return {lb.id: lb for lb in rows}

    def amphorae(self) -> list[m.Amphora]:
        with self.db.read() as s:
            return list(s.scalars(sa.select(m.Amphora)))

    def tree_statuses(self, lb_ids: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
        """(kind, id, provisioning_status) of every object in each load balancer's tree."""
        ids = list(lb_ids)
        out: dict[str, list[tuple[str, str, str]]] = {i: [] for i in ids}
        with self.db.read() as s:
            for lb in s.scalars(sa.select(m.LoadBalancer).where(m.LoadBalancer.id.in_(ids))):
                out[lb.id].append(("loadbalancer", lb.id, lb.provisioning_status))
            for li in s.scalars(sa.select(m.Listener).where(
                    m.Listener.load_balancer_id.in_(ids))):
                out[li.load_balancer_id].append(("listener", li.id, li.provisioning_status))
            pools = list(s.scalars(sa.select(m.Pool).where(m.Pool.load_balancer_id.in_(ids))))
            pool_lb = {p.id: p.load_balancer_id for p in pools}
            for p in pools:
                out[p.load_balancer_id].append(("pool", p.id, p.provisioning_status))
            for mb in s.scalars(sa.select(m.Member).where(m.Member.pool_id.in_(list(pool_lb)))):
                out[pool_lb[mb.pool_id]].append(("member", mb.id, mb.provisioning_status))
            for hm in s.scalars(sa.select(m.HealthMonitor).where(
                    m.HealthMonitor.pool_id.in_(list(pool_lb)))):
                out[pool_lb[hm.pool_id]].append(("healthmonitor", hm.id,
                                                 hm.provisioning_status))
        return out

    def settled(self, lb_ids: Iterable[str]) -> bool:
        """No operation of these load balancers open, nothing in their trees PENDING_*."""
        ids = list(lb_ids)
        if any(op.state in OPEN_OPS for op in self.operations(ids)):
            return False
        return not any(st in PENDING for tree in self.tree_statuses(ids).values()
                       for _k, _i, st in tree)

    # -- the noop call log -------------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        """Every noop driver call so far: {"driver", "method", "args", "pid", "time"} plus
        "call" = "driver.method". A line torn by kill -9 is counted, not returned."""
        try:
            text = self.call_log.read_text()
        except FileNotFoundError:
            return []
        out, torn = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                torn += 1
                continue
            entry["call"] = f"{entry['driver']}.{entry['method']}"
            out.append(entry)
        self.torn_call_lines = torn
        return out


# ---- what every crash scenario checks at the end ---------------------------------------------


def assert_settled(cluster: Cluster, lb_ids: list[str]) -> None:
    """Every load balancer ACTIVE, or ERROR with a reason in its operation; nothing in any
    tree PENDING_*; no operation of them left open."""
    ops = cluster.operations(lb_ids)
    still_open = [(op.kind, op.load_balancer_id, op.state, op.owner) for op in ops
                  if op.state in OPEN_OPS]
    assert not still_open, f"operations still open: {still_open}"
    pending = [(lb, k, i, st) for lb, tree in cluster.tree_statuses(lb_ids).items()
               for k, i, st in tree if st in PENDING]
    assert not pending, f"objects left PENDING_*: {pending}"
    lbs = cluster.load_balancers(lb_ids)
    assert set(lbs) == set(lb_ids)
    for lb_id, lb in lbs.items():
        assert lb.provisioning_status in ("ACTIVE", "ERROR"), (lb_id, lb.provisioning_status)
        if lb.provisioning_status == "ERROR":
            failed = [op for op in ops if op.load_balancer_id == lb_id and op.state == "FAILED"]
            assert failed and all(op.error for op in failed), \
                f"load balancer {lb_id} is ERROR without a reason in its operation"


def assert_no_orphan_amphorae(cluster: Cluster, lb_ids: list[str]) -> None:
    """Every live amphora row belongs to an ACTIVE load balancer, and every amphora the
    compute driver built is either in use by a live load balancer or was deleted again."""
    lbs = cluster.load_balancers(lb_ids)
    amps = {a.id: a for a in cluster.amphorae()}
    ours = {a.id for a in amps.values() if a.load_balancer_id in lbs}
    for a in amps.values():
        if a.status == "DELETED":
            continue
        lb = lbs.get(a.load_balancer_id or "")
        if a.load_balancer_id is not None and lb is None:
            continue  # another test's load balancer on a shared database
        assert lb is not None and lb.provisioning_status == "ACTIVE", \
            f"orphan amphora {a.id} ({a.status}) of load balancer {a.load_balancer_id} " \
            f"({lb.provisioning_status if lb else 'none'})"
        assert a.status == "ALLOCATED", (a.id, a.status)
    calls = cluster.calls()
    deleted = {c["args"]["compute_id"] for c in calls if c["call"] == "compute.delete"}
    for c in calls:
        if c["call"] != "compute.build":
            continue
        amp_id = c["args"]["amphora_id"]
        a = amps.get(amp_id)
        assert a is not None, f"compute.build of amphora {amp_id}, which has no row"
        if a.load_balancer_id is not None and a.load_balancer_id not in lbs:
            continue  # another test's load balancer on a shared database
        live = (a.status == "ALLOCATED" and amp_id in ours
                and lbs[a.load_balancer_id or ""].provisioning_status == "ACTIVE")
        assert live or (a.compute_id or amp_id) in deleted or amp_id in deleted, \
            f"amphora {amp_id} was built, is {a.status} (load balancer " \
            f"{a.load_balancer_id}) and was never deleted: an orphan"


@dataclass(frozen=True)
class OpSnapshot:
    """An operation as it stood at one moment (e.g. right after a worker was killed)."""

    id: str
    load_balancer_id: str | None
    kind: str
    state: str
    owner: str | None
    claim_count: int
    done: tuple[str, ...]
    current_step: str | None

    @property
    def in_flight(self) -> str | None:
        """The step that may have been running: the first step of the flow not recorded as
        done. (The engine need not record that a step started, so this is read from the
        flow, not from ``current_step``.)"""
        if self.state != "RUNNING" or self.kind not in FLOWS:
            return None
        flow = FLOWS[self.kind][0]
        return next((st.name for st in flow.steps if st.name not in self.done), None)


def snapshot_operations(cluster: Cluster, lb_ids: Iterable[str]) -> dict[str, OpSnapshot]:
    return {op.id: OpSnapshot(op.id, op.load_balancer_id, op.kind, op.state, op.owner,
                              op.claim_count, tuple((op.progress or {}).get("done", [])),
                              op.current_step)
            for op in cluster.operations(lb_ids)}


def planned_amphorae(op: m.Operation) -> list[str]:
    """The amphora ids a load balancer flow planned (kept in its saved context)."""
    ctx = (op.progress or {}).get("context") or {}
    return list(ctx.get("new_amphora_ids") or [])


def assert_built_only_planned(cluster: Cluster, lb_ids: list[str]) -> None:
    """compute.build was called for exactly the amphora ids each create planned, and a load
    balancer never got a second, distinct amphora (PlanAmphorae ran once)."""
    creates = [op for op in cluster.operations(lb_ids) if op.kind == "create_load_balancer"]
    planned = {amp: op.load_balancer_id for op in creates for amp in planned_amphorae(op)}
    for op in creates:
        assert len(planned_amphorae(op)) == 1, (op.load_balancer_id, planned_amphorae(op))
    rows: dict[str, list[str]] = {}
    for a in cluster.amphorae():
        if a.load_balancer_id in lb_ids:
            rows.setdefault(a.load_balancer_id, []).append(a.id)
    for lb_id, amp_ids in rows.items():
        assert all(planned.get(a) == lb_id for a in amp_ids), \
            f"load balancer {lb_id} has amphora rows {amp_ids}, planned " \
            f"{[a for a, lb in planned.items() if lb == lb_id]}"
    ours = set(planned) | {a for ids in rows.values() for a in ids}
    built = {c["args"]["amphora_id"] for c in cluster.calls() if c["call"] == "compute.build"}
    # Builds of amphorae neither planned here nor in these load balancers' rows belong to
    # another test on a shared database; every build must otherwise be a planned one.
    unplanned = {a for a in built if a in ours} - set(planned)
    assert not unplanned, f"amphorae built that no flow planned: {unplanned}"
    for op in creates:
        if op.state == "SUCCEEDED":
            missing = set(planned_amphorae(op)) - built
            assert not missing, f"{op.load_balancer_id}: planned amphorae never built {missing}"


def assert_action_steps_once(cluster: Cluster, before: dict[str, OpSnapshot],
                             final: dict[str, m.Operation]) -> None:
    """Every driver call of an action step happened once per amphora, except the calls of a
    step that was in flight at the interruption (idempotent, so it may run once more). A
    step recorded as done before the interruption never runs again."""
    counts = Counter((c["call"], c["args"].get("amphora_id")) for c in cluster.calls()
                     if c["call"] in METHOD_STEP)
    problems = []
    for op in final.values():
        if op.kind != "create_load_balancer":
            continue
        snap = before.get(op.id)
        in_flight = snap.in_flight if snap is not None else None
        for amp in planned_amphorae(op):
            for meth, step in METHOD_STEP.items():
                n = counts[(meth, amp)]
                allowed = {1, 2} if step == in_flight else {1}
                if op.state == "FAILED":
                    allowed |= {0}
                if n not in allowed:
                    problems.append(f"{op.load_balancer_id} amphora {amp}: {meth} x{n} "
                                    f"(step {step}; done before: "
                                    f"{list(snap.done) if snap else []}; in flight: "
                                    f"{in_flight})")
    assert not problems, "side effects repeated or missing:\n" + "\n".join(problems)


# ---- databases and fixtures ------------------------------------------------------------------


@contextlib.contextmanager
def database_url(kind: str, root: Path) -> Iterator[str]:
    """A fresh database: SQLite under ``root``, or a throwaway database on the local MariaDB
    or PostgreSQL server, dropped afterwards (skipped outside CI if the server is away)."""
    if kind == "sqlite":
        yield f"sqlite:///{root / 'statera.db'}"
        return
    yield from server_db(kind)


@contextlib.contextmanager
def cluster_on(kind: str, root: Path, **env: str) -> Iterator[Cluster]:
    """A migrated Cluster on a fresh ``kind`` database; every process it started is killed
    (by PID) and its logs printed when the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    with database_url(kind, root) as url:
        cluster = Cluster(root=root, db_url=url, env=env)
        try:
            cluster.migrate()
            yield cluster
        finally:
            print(cluster.report())
            cluster.close()


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(kind="sqlite", **env)``: a Cluster for this test only."""
    made = 0
    with contextlib.ExitStack() as stack:
        def make(kind: str = "sqlite", **env: str) -> Cluster:
            nonlocal made
            made += 1
            return stack.enter_context(cluster_on(kind, tmp_path / f"cluster{made}", **env))

        yield make


class ServerClusters:
    """One API + worker per database server, started on first use and shared by the
    scenarios that only need a running cluster (CP-8, CP-9): starting processes is the
    slowest part of this suite. Each scenario uses its own projects and load balancers."""

    # A default load balancer quota of LIMIT for CP-9; CP-8 makes one load balancer.
    ENV = {"STATERA_QUOTAS__DEFAULT_LOAD_BALANCER_QUOTA": "10",
           "STATERA_CONTROLLER_WORKER__POLL_INTERVAL": "0.02"}

    def __init__(self, root: Path, stack: contextlib.ExitStack) -> None:
        self.root = root
        self.stack = stack
        self.clusters: dict[str, Cluster] = {}

    def get(self, kind: str) -> Cluster:
        if kind not in self.clusters:
            cluster = self.stack.enter_context(cluster_on(kind, self.root / kind, **self.ENV))
            api, worker = cluster.start_api(), cluster.start_worker()
            cluster.wait_api(api)
            cluster.wait_worker(worker)
            self.clusters[kind] = cluster
        return self.clusters[kind]


@pytest.fixture(scope="package")
def server_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerClusters]:
    """Torn down (processes killed, databases dropped) after this package's last test."""
    with contextlib.ExitStack() as stack:
        yield ServerClusters(tmp_path_factory.mktemp("shared"), stack)
