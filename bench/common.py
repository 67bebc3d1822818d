"""Shared pieces of the benchmarks: free ports, a Statera process, timing and tables."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None for SQLite (Statera's default file), or a throwaway database on a server."""
    if kind == "sqlite":
        yield None
        return
    import sqlalchemy as sa

    name = f"statera_bench_{uuid.uuid4().hex[:8]}"
    base = {"mariadb": "mysql+pymysql://root@127.0.0.1:3306",
            "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432"}[kind]
    admin = sa.create_engine(base + ("/mysql" if kind == "mariadb" else "/postgres"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as c:
            if kind == "postgresql":
                c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@dataclass
class Statera:
    url: str
    process: subprocess.Popen[bytes]
    state: Path


# Processes that only exercise the API and the flows pin the noop drivers: on a root host
# with haproxy, the ``auto`` default would build real amphorae on the default bridges.
NOOP_DRIVERS = {"STATERA_CONTROLLER_WORKER__COMPUTE_DRIVER": "compute_noop_driver",
                "STATERA_CONTROLLER_WORKER__NETWORK_DRIVER": "network_noop_driver",
                "STATERA_CONTROLLER_WORKER__AMPHORA_DRIVER": "amphora_noop_driver"}


@contextlib.contextmanager
def statera_up(db_url: str | None, **env: str) -> Iterator[Statera]:
    """`statera up` on a free port and a temporary state directory; stopped afterwards."""
    state = Path(tempfile.mkdtemp(prefix="statera-bench-"))
    port = free_port()
    environ = dict(os.environ, STATERA_DEFAULT__STATE_PATH=str(state),
                   STATERA_API_SETTINGS__BIND_PORT=str(port), **{**NOOP_DRIVERS, **env})
    if db_url:
        environ["STATERA_DATABASE__CONNECTION"] = db_url
    log = open(state / "statera.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(BIN / "statera"), "up"], env=environ, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"statera up did not start; see {state / 'statera.log'}")
            time.sleep(0.05)
        yield Statera(url=url, process=proc, state=state)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_row(name: str, latencies: list[float], wall: float) -> str:
    rate = len(latencies) / wall if wall > 0 else float("nan")
    return (f"{name:<28} {len(latencies):>6} {rate:>10.1f} "
            f"{percentile(latencies, 50) * 1000:>9.1f} {percentile(latencies, 99) * 1000:>9.1f} "
            f"{statistics.fmean(latencies) * 1000 if latencies else float('nan'):>9.1f}")


HEADER = f"{'operation':<28} {'count':>6} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}"
