"""bench/health: heartbeats per second one health-manager process absorbs, database writes
included.

Creates N load balancers in the database (LB, HTTP listener, pool, two members, an ALLOCATED
amphora each), starts a real `statera health-manager` process on a free loopback port, and
sends signed per-amphora heartbeats from a separate process at a fixed total rate for a
bounded time. Each heartbeat carries ``totconns = 1``, so the sum of
``listener_statistics.total_connections`` afterwards is exactly the number of heartbeats
that were received, verified and written; the rest were dropped. A share of the amphorae
("flappers") report a member going down and up on alternate beats, so operating-status writes
are part of the load.

    .venv/bin/python -m bench.health [--db sqlite|mariadb|postgresql] [--amphorae 1000]
                                     [--rate 5000] [--seconds 10] [--flap 0.1]

Packets are signed ahead of time, so the sender spends the measured seconds sending, not
hashing (the health manager's replay window is widened to cover the signing time; its checks
run as usual). Bounded: at most --seconds of sending plus a drain of 30 s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import BIN, NOOP_DRIVERS, database
from statera.db import models as m
from statera.db.migrate import upgrade
from statera.wire import heartbeat as wire

KEY = "bench-heartbeat-master-key-0123456789"
DRAIN_LIMIT = 30.0


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_trees(url: str, count: int) -> list[dict[str, Any]]:
    trees = []
    for _ in range(count):
        trees.append({k: str(uuid.uuid4()) for k in
                      ("lb", "listener", "pool", "m0", "m1", "amphora")})
    common = {"project_id": "bench", "provisioning_status": "ACTIVE",
              "operating_status": "OFFLINE"}
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for chunk in range(0, count, 500):
            part = trees[chunk:chunk + 500]
            c.execute(sa.insert(m.LoadBalancer.__table__), [  # type: ignore[arg-type]
                {"id": t["lb"], "enabled": True, "topology": "SINGLE", "provider": "amphora",
                 **common} for t in part])
            c.execute(sa.insert(m.Pool.__table__), [  # type: ignore[arg-type]
                {"id": t["pool"], "load_balancer_id": t["lb"], "protocol": "HTTP",
                 "lb_algorithm": "ROUND_ROBIN", "enabled": True, "tls_enabled": False,
                 **common} for t in part])
            c.execute(sa.insert(m.Listener.__table__), [  # type: ignore[arg-type]
                {"id": t["listener"], "load_balancer_id": t["lb"], "protocol": "HTTP",
                 "protocol_port": 80, "enabled": True, "default_pool_id": t["pool"],
                 "client_authentication": "NONE", **common} for t in part])
            c.execute(sa.insert(m.Member.__table__), [  # type: ignore[arg-type]
                {"id": t[k], "pool_id": t["pool"], "ip_address": f"192.0.2.{i + 10}",
                 "protocol_port": 80, "enabled": True, "backup": False, "vnic_type": "normal",
                 **common} for t in part for i, k in enumerate(("m0", "m1"))])
            c.execute(sa.insert(m.Amphora.__table__), [  # type: ignore[arg-type]
                {"id": t["amphora"], "status": "ALLOCATED", "load_balancer_id": t["lb"],
                 "lb_network_ip": "127.0.0.1", "role": "STANDALONE", "cert_busy": False,
                 "compute_id": t["amphora"]} for t in part])
    engine.dispose()
    return trees


def sender(trees: list[dict[str, Any]], port: int, rate: float, seconds: float,
           flap: float, out: Any) -> None:
    """Runs in its own process: sign every packet first, then send them on schedule."""
    per_amp = rate / len(trees)
    interval = 1.0 / per_amp
    flappers = int(len(trees) * flap)
    signed_at = time.time()
    planned: list[tuple[float, bytes]] = []
    for n, t in enumerate(trees):
        key = wire.derive_amphora_key(KEY.encode(), t["amphora"])
        offset = (n / len(trees)) * interval  # spread evenly over the interval
        beat = 0
        while offset + beat * interval < seconds:
            down = n < flappers and beat % 2 == 1
            msg = {"id": t["amphora"], "seq": beat + 1, "ver": 3, "t": signed_at,
                   "listeners": {t["listener"]: {"status": "OPEN", "stats": {
                       "rx": 100, "tx": 1000, "conns": 1, "totconns": 1, "ereq": 0}}},
                   "pools": {f"{t['pool']}:{t['listener']}": {"status": "UP", "members": {
                       t["m0"]: "DOWN" if down else "UP", t["m1"]: "UP"}}}}
            planned.append((offset + beat * interval, wire.encode_per_amphora(msg, key)))
            beat += 1
    planned.sort(key=lambda p: p[0])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    out.put({"started": True})
    sent = errors = 0
    first = time.time()
    i = 0
    while i < len(planned):
        elapsed = time.time() - first
        while i < len(planned) and planned[i][0] <= elapsed:
            try:
                sock.sendto(planned[i][1], target)
                sent += 1
            except OSError:
                errors += 1
            i += 1
        time.sleep(0.0005)
    out.put({"sent": sent, "errors": errors, "seconds": time.time() - first})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def written(url: str) -> tuple[int, int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            total = c.execute(sa.select(sa.func.coalesce(
                sa.func.sum(m.ListenerStatistics.total_connections), 0))).scalar_one()
            healthy = c.execute(sa.select(sa.func.count()).select_from(m.AmphoraHealth)) \
                .scalar_one()
            online = c.execute(sa.select(sa.func.count()).select_from(m.LoadBalancer).where(
                m.LoadBalancer.operating_status.in_(("ONLINE", "DEGRADED")))).scalar_one()
    finally:
        engine.dispose()
    return int(total), int(healthy), int(online)


def run(kind: str, amphorae: int, rate: float, seconds: float, flap: float) -> None:
    state = Path(tempfile.mkdtemp(prefix="statera-bench-hm-"))
    try:
        with database(kind) as server_url:
            url = server_url or f"sqlite:///{state / 'statera.db'}"
            upgrade(url)
            t0 = time.perf_counter()
            trees = create_trees(url, amphorae)
            print(f"created {amphorae} load balancers in {time.perf_counter() - t0:.1f} s")
            port = udp_port()
            env = dict(os.environ, STATERA_DEFAULT__STATE_PATH=str(state),
                       STATERA_DATABASE__CONNECTION=url,
                       STATERA_HEALTH_MANAGER__BIND_IP="127.0.0.1",
                       STATERA_HEALTH_MANAGER__BIND_PORT=str(port),
                       STATERA_HEALTH_MANAGER__HEARTBEAT_KEY=KEY,
                       # Nobody goes silent here; keep failovers out of the measurement.
                       STATERA_HEALTH_MANAGER__HEARTBEAT_TIMEOUT="600",
                       # Packets are signed before the run (send time = signing time); the
                       # window check runs as usual, over a window wide enough for that.
                       STATERA_HEALTH_MANAGER__REPLAY_WINDOW="3600",
                       **NOOP_DRIVERS)
            log = open(state / "health-manager.log", "wb")  # noqa: SIM115
            hm = subprocess.Popen([str(BIN / "statera"), "health-manager"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 60
                while b"receiving heartbeats" not in (state / "health-manager.log").read_bytes():
                    if hm.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the health manager did not start:\n" +
                                           (state / "health-manager.log").read_text())
                    time.sleep(0.1)
                measure(url, hm, trees, port, rate, seconds, flap, kind)
            finally:
                hm.send_signal(signal.SIGTERM)
                try:
                    hm.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    hm.kill()
                    hm.wait()
                log.close()
                problems = [line for line in
                            (state / "health-manager.log").read_text().splitlines()
                            if " WARNING " in line or " ERROR " in line]
                for line in problems[:10]:
                    print(f"  log: {line[:200]}")
    finally:
        shutil.rmtree(state, ignore_errors=True)


def measure(url: str, hm: subprocess.Popen[bytes], trees: list[dict[str, Any]], port: int,
            rate: float, seconds: float, flap: float, kind: str) -> None:
    queue: Any = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(
        target=sender, args=(trees, port, rate, seconds, flap, queue))
    proc.start()
    queue.get(timeout=600)  # signing done, sending starts
    cpu_before = cpu_seconds(hm.pid)
    began = time.time()
    timeline = []
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Exception:  # queue.Empty: note the progress once a second
            timeline.append(f"{written(url)[0]}@{time.time() - began:.0f}s")
    proc.join(10)
    sent = result["sent"]
    # Drain: wait until everything sent is written, or nothing more arrives for 2 s.
    last_total, last_change = -1, time.time()
    while True:
        total, healthy, online = written(url)
        if total != last_total:
            last_total, last_change = total, time.time()
        if total >= sent or time.time() - last_change > 2.0 \
                or time.time() - began > seconds + DRAIN_LIMIT:
            break
        time.sleep(0.2)
    finished = last_change
    cpu = cpu_seconds(hm.pid) - cpu_before
    wall = max(finished - began, result["seconds"])
    print(f"backend              {kind}")
    print(f"amphorae             {len(trees)} ({int(len(trees) * flap)} flapping a member)")
    print(f"offered              {rate:.0f} heartbeats/s for {seconds:.0f} s "
          f"({len(trees) and rate / len(trees):.2f}/s per amphora)")
    print(f"sent                 {sent} in {result['seconds']:.2f} s "
          f"({sent / result['seconds']:.0f}/s)")
    print(f"written              {total} (verified, coalesced and committed)")
    print(f"dropped              {sent - total} ({(sent - total) / max(sent, 1):.2%})")
    print(f"absorbed             {total / wall:.0f} heartbeats/s with DB writes "
          f"(first send to last write: {wall:.2f} s; last write "
          f"{max(0.0, finished - began - result['seconds']):.2f} s after the last send)")
    print(f"kept up              {'yes' if total == sent else 'no'}: "
          f"{total / result['seconds']:.0f} written per second of sending")
    print(f"health rows          {healthy}; load balancers ONLINE/DEGRADED {online}")
    print(f"written over time    {' '.join(timeline)}")
    print(f"health manager CPU   {cpu:.2f} s ({cpu / max(total, 1) * 1e6:.0f} us per heartbeat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "mariadb", "postgresql"), default="sqlite")
    parser.add_argument("--amphorae", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5000.0, help="heartbeats/s in all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flap", type=float, default=0.1,
                        help="share of amphorae whose member flaps DOWN/UP every beat")
    args = parser.parse_args()
    if not (1 <= args.amphorae <= 20000 and 0 < args.rate <= 50000
            and 0 < args.seconds <= 60 and 0 <= args.flap <= 1):
        parser.error("bounded: 1-20000 amphorae, rate <= 50000/s, <= 60 s")
    run(args.db, args.amphorae, args.rate, args.seconds, args.flap)


if __name__ == "__main__":
    main()
