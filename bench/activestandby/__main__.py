"""bench/activestandby: how long an ACTIVE_STANDBY load balancer's VIP goes unanswered.

An HTTP load balancer with two amphorae (keepalived, VRRPv3, [keepalived_vrrp] defaults) on
the namespace testbed (``bench.testbed``), and one bounded client on the host opening a new
connection per request (0.1 s connect timeout) the whole time. Per round:

* planned switchover: keepalived on the MASTER stopped through the agent API (SIGTERM: a
  priority-0 advert), started again afterwards as BACKUP;
* MASTER crash: every process in the MASTER's tenant namespace (haproxy, keepalived) killed
  with SIGKILL; then the dead amphora is failed over through the API (as the health manager
  would), and the pair is whole again for the next round.

Prints each round's longest gap without an answer and the failed requests after it, then
median and worst per scenario beside the targets (planned <= 0.3 s, crash <= 1 s; Octavia
with 1 s adverts: 3.6 s), and how long each failover took. Needs root, haproxy and
keepalived.

    .venv/bin/python -m bench.activestandby [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.activestandby.load import Load
from bench.activestandby.pair import KEEPALIVED, Pair, create_pair, start_bed, tenant_pids
from bench.testbed import missing_requirements

TARGETS = {"planned switchover": 0.3, "MASTER crash": 1.0}


def planned(pair: Pair) -> tuple[float, int]:
    master = pair.holder()
    with Load(pair.vip, seconds=30) as load:
        load.wait_successes(30)
        event = time.monotonic()
        pair.agents.stop_vrrp(pair.amphora(master))
        time.sleep(1.5)
    gap, until = load.outage(event)
    pair.agents.start_vrrp(pair.amphora(master))
    time.sleep(1.5)  # it joins as BACKUP
    return gap, load.failures_after(until)


def crash(pair: Pair) -> tuple[float, int, float]:
    dead = pair.holder()
    with Load(pair.vip, seconds=120, limit=40000) as load:
        load.wait_successes(30)
        event = time.monotonic()
        for pid in tenant_pids(dead):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(2.0)
        started = time.monotonic()
        pair.replace(dead)
        took = time.monotonic() - started
        time.sleep(0.5)
    gap, until = load.outage(event)
    failed = load.failures_after(until)
    if failed:
        print(f"  failures after the takeover: {load.summary(event)[:1500]}", flush=True)
    return gap, failed, took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    problem = missing_requirements() or (None if KEEPALIVED.exists() else "needs keepalived")
    if problem:
        print(f"bench/activestandby: {problem}", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {name: [] for name in TARGETS}
    failovers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-as-") as tmp:
        bed = start_bed(Path(tmp))
        pair = None
        try:
            pair = create_pair(bed)
            pair.holder()
            for n in range(1, args.rounds + 1):
                gap, failed = planned(pair)
                results["planned switchover"].append(gap)
                print(f"round {n}: planned switchover: gap {gap * 1000:4.0f} ms, "
                      f"{failed} failed after", flush=True)
                gap, failed, took = crash(pair)
                results["MASTER crash"].append(gap)
                failovers.append(took)
                print(f"round {n}: MASTER crash:       gap {gap * 1000:4.0f} ms, "
                      f"{failed} failed after; amphora failover took {took:.1f} s",
                      flush=True)
        finally:
            if pair is not None:
                pair.close()
            bed.close()
    print()
    print(f"{'scenario':<20} {'median':>9} {'worst':>9} {'target':>8}")
    for name, gaps in results.items():
        print(f"{name:<20} {statistics.median(gaps) * 1000:7.0f}ms {max(gaps) * 1000:7.0f}ms "
              f"{TARGETS[name] * 1000:6.0f}ms")
    print(f"amphora failover (dead MASTER replaced, pair whole): median "
          f"{statistics.median(failovers):.1f} s, worst {max(failovers):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
