"""bench/api: the control plane's speed with the noop drivers.

Creates N whole load balancer trees in single calls (LB, HTTP listener, pool, two members,
health monitor), then shows, lists, reads status trees and deletes them (cascade), with C
concurrent clients, and prints requests/s and p50/p99 per operation, plus the time from POST
to ACTIVE. A paced phase checks read latency at 50 requests/s.

    .venv/bin/python -m bench.api [--db sqlite|mariadb|postgresql] [-n 200] [-c 8]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import HEADER, database, statera_up, summary_row

HEADERS = {"X-Project-Id": "bench"}


def tree(subnet: str, i: int) -> dict[str, object]:
    return {"loadbalancer": {
        "name": f"bench-{i}", "vip_subnet_id": subnet,
        "listeners": [{
            "name": f"l-{i}", "protocol": "HTTP", "protocol_port": 80,
            "default_pool": {
                "name": f"p-{i}", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": "10.210.0.200", "protocol_port": 8080},
                            {"address": "10.210.0.201", "protocol_port": 8080}],
                "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3,
                                  "max_retries": 3}}}]}}


def run_phase(name: str, count: int, concurrency: int,
              call: Callable[[httpx.Client, int], None], base: str) -> tuple[str, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, headers=HEADERS, timeout=30)
        start = time.perf_counter()
        call(local.client, i)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    return summary_row(name, latencies, wall), latencies


def wait_all(client: httpx.Client, ids: list[str], want: str | None, timeout: float) -> float:
    start = time.perf_counter()
    pending = set(ids)
    while pending and time.perf_counter() - start < timeout:
        for lb_id in list(pending):
            r = client.get(f"/v2/lbaas/loadbalancers/{lb_id}")
            if want is None:
                settled = r.status_code == 404
            else:
                settled = r.status_code == 200 and r.json()["loadbalancer"][
                    "provisioning_status"] in (want, "ERROR")
            if settled:
                pending.discard(lb_id)
        time.sleep(0.05)
    if pending:
        raise RuntimeError(f"{len(pending)} load balancers did not settle in {timeout}s")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "mariadb", "postgresql"])
    parser.add_argument("-n", type=int, default=200, help="load balancer trees")
    parser.add_argument("-c", type=int, default=8, help="concurrent clients")
    args = parser.parse_args()

    with database(args.db) as url, statera_up(url, STATERA_CONTROLLER_WORKER__WORKERS="8",
                                              STATERA_API_SETTINGS__AUTH_STRATEGY="noauth") as st:
        client = httpx.Client(base_url=st.url, headers=HEADERS, timeout=30)
        subnet = client.get("/v2.0/subnets").json()["subnets"][0]["id"]
        ids: list[str] = [""] * args.n
        rows = []

        def create(c: httpx.Client, i: int) -> None:
            r = c.post("/v2/lbaas/loadbalancers", json=tree(subnet, i))
            r.raise_for_status()
            ids[i] = r.json()["loadbalancer"]["id"]

        t0 = time.perf_counter()
        rows.append(run_phase("create tree (POST)", args.n, args.c, create, st.url)[0])
        settle = wait_all(client, ids, "ACTIVE", 300)
        all_active = time.perf_counter() - t0

        def show(c: httpx.Client, i: int) -> None:
            c.get(f"/v2/lbaas/loadbalancers/{ids[i % len(ids)]}").raise_for_status()

        def list_lbs(c: httpx.Client, i: int) -> None:
            c.get("/v2/lbaas/loadbalancers", params={"limit": 50}).raise_for_status()

        def list_pools(c: httpx.Client, i: int) -> None:
            c.get("/v2/lbaas/pools", params={"limit": 50}).raise_for_status()

        def status(c: httpx.Client, i: int) -> None:
            c.get(f"/v2/lbaas/loadbalancers/{ids[i % len(ids)]}/status").raise_for_status()

        rows.append(run_phase("show LB", args.n * 2, args.c, show, st.url)[0])
        rows.append(run_phase("list LBs (limit 50)", args.n, args.c, list_lbs, st.url)[0])
        rows.append(run_phase("list pools (limit 50)", args.n, args.c, list_pools, st.url)[0])
        rows.append(run_phase("status tree", args.n, args.c, status, st.url)[0])

        # Read latency at a steady 50 requests/s (the read-p99 target).
        paced: list[float] = []
        for i in range(min(250, args.n * 2)):
            start = time.perf_counter()
            client.get(f"/v2/lbaas/loadbalancers/{ids[i % len(ids)]}").raise_for_status()
            paced.append(time.perf_counter() - start)
            time.sleep(max(0.0, 0.02 - (time.perf_counter() - start)))
        rows.append(summary_row("show LB @50 req/s", paced, len(paced) / 50))

        def delete(c: httpx.Client, i: int) -> None:
            r = c.delete(f"/v2/lbaas/loadbalancers/{ids[i]}", params={"cascade": "true"})
            r.raise_for_status()

        rows.append(run_phase("delete cascade (DELETE)", args.n, args.c, delete, st.url)[0])
        gone = wait_all(client, ids, None, 300)

    print(f"bench/api: {args.n} trees, {args.c} clients, database {args.db}, "
          f"noop drivers, {os.cpu_count()} CPUs")
    print(HEADER)
    for row in rows:
        print(row)
    print(f"all {args.n} trees ACTIVE {all_active:.2f}s after the first POST "
          f"(last settled {settle:.2f}s after the last POST returned); "
          f"all deleted {gone:.2f}s after the last DELETE returned")


if __name__ == "__main__":
    main()
