"""bench/reload: member changes through the API under load, counting failed requests (DP-5).

A Statera load balancer (HTTP listener, ROUND_ROBIN) on the namespace testbed
(``bench.testbed``) with fast members (one-thread HAProxy answering 200). Two bounded
clients on the host send GET / to the VIP the whole time: one reusing a keep-alive
connection, one opening a new connection per request. Meanwhile N member changes go through
the API in a cycle (add a member, change a weight, disable it, enable it, remove it), each
waited to ACTIVE, so each is one agent upload and one HAProxy master-worker reload. Two
members stay enabled throughout, so every request has somewhere to go.

Prints requests made and failed per client (by kind), changes/s, and how many old HAProxy
workers are still alive after the run and once they settle (DP-5: <= 2 after 60 s, which
needs ``hard-stop-after`` in the rendered global section). Target: 0 failed requests.

    .venv/bin/python -m bench.reload [--changes 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.dataplane.load import PROXY_PORT, add_fast_members, create_statera_lb, rendered_config
from bench.reload.clients import Client
from bench.testbed import MEMBER_PORT, Member, Testbed, missing_requirements
from statera.agent.haproxy import master_cli, parse_show_proc

Change = Callable[[], str]
TIMEOUT_JOIN = 10.0


def change_cycle(bed: Testbed, api: httpx.Client, lb_id: str, pool_id: str,
                 spare: list[Member]) -> list[Change]:
    """The five changes of one cycle, applied to a spare member (the stable ones keep
    serving); each returns a description once the load balancer is ACTIVE again."""
    members = f"/v2/lbaas/pools/{pool_id}/members"
    state: dict[str, Any] = {"n": 0, "id": None}

    def call(method: str, path: str, body: dict[str, Any] | None = None) -> None:
        r = api.request(method, path, json=body)
        if r.status_code not in (200, 201, 202, 204):
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        if method == "POST":
            state["id"] = r.json()["member"]["id"]
        bed.wait_lb_active(api, lb_id, timeout=60)

    def spare_member() -> Member:
        return spare[state["n"] % len(spare)]

    def add() -> str:
        m = spare_member()
        call("POST", members, {"member": {"address": m.address, "protocol_port": MEMBER_PORT,
                                          "name": m.name}})
        return f"add {m.name}"

    def weight() -> str:
        w = 1 + state["n"] % 9
        call("PUT", f"{members}/{state['id']}", {"member": {"weight": w}})
        return f"weight {spare_member().name} = {w}"

    def disable() -> str:
        call("PUT", f"{members}/{state['id']}", {"member": {"admin_state_up": False}})
        return f"disable {spare_member().name}"

    def enable() -> str:
        call("PUT", f"{members}/{state['id']}", {"member": {"admin_state_up": True}})
        return f"enable {spare_member().name}"

    def remove() -> str:
        name = spare_member().name
        call("DELETE", f"{members}/{state['id']}")
        state["n"] += 1
        return f"remove {name}"

    return [add, weight, disable, enable, remove]


def reload_settings(config: str) -> list[str]:
    """What in a rendered haproxy.cfg decides how reloads treat connections."""
    lines = [ln.strip() for ln in config.splitlines()]
    hard_stop = next((ln for ln in lines if ln.startswith("hard-stop-after")), None)
    expose = any("expose-fd listeners" in ln for ln in lines)
    idle = sum(ln == "option idle-close-on-response" for ln in lines)
    return [hard_stop or "NO hard-stop-after",
            "stats socket with expose-fd listeners" if expose else "NO expose-fd listeners",
            f"idle-close-on-response in {idle} frontend(s)"]


def old_workers(master_socket: Path) -> int:
    return len(parse_show_proc(master_cli(master_socket, "show proc")).old_workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=100,
                        help="member changes, each waited to ACTIVE (default 100)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds to wait for old workers to exit (default 60)")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="stop the changes after this long (default 300)")
    parser.add_argument("--max-requests", type=int, default=2_000_000,
                        help="per client (default 2,000,000)")
    args = parser.parse_args(argv)
    if not 1 <= args.changes <= 10_000 or args.settle < 0:
        parser.error("1 <= --changes <= 10000 and --settle >= 0")
    problem = missing_requirements()
    if problem:
        print(f"bench.reload: {problem}", file=sys.stderr)
        return 2

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statera-bench-rl-") as tmp:
        bed = Testbed.start(Path(tmp), members=0)
        stop = threading.Event()
        clients: list[Client] = []
        try:
            fast = add_fast_members(bed, 4)
            stable, spare = fast[:2], fast[2:]
            lb_id, vip = create_statera_lb(bed, stable, name="reload")
            cfg = rendered_config(bed, lb_id)
            master_socket = cfg.parent / "master.sock"
            print(f"testbed up in {time.monotonic() - started:.1f} s; rendered: "
                  + "; ".join(reload_settings(cfg.read_text())))
            api = bed.api()
            pool_id = api.get(f"/v2/lbaas/loadbalancers/{lb_id}").json()[
                "loadbalancer"]["pools"][0]["id"]
            cycle = change_cycle(bed, api, lb_id, pool_id, spare)
            clients = [Client("keepalive", vip, PROXY_PORT, True, stop, args.max_requests),
                       Client("new-connection", vip, PROXY_PORT, False, stop,
                              args.max_requests)]
            for c in clients:
                c.start()
            time.sleep(1.0)   # both clients running before the first change
            t0 = time.monotonic()
            done = most_old = 0
            for i in range(args.changes):
                if time.monotonic() - t0 > args.max_seconds:
                    print(f"stopped after {args.max_seconds:g} s")
                    break
                what = cycle[i % len(cycle)]()
                done += 1
                most_old = max(most_old, old_workers(master_socket))
                if (i + 1) % 20 == 0:
                    print(f"  {i + 1} changes, last: {what}, "
                          f"{(i + 1) / (time.monotonic() - t0):.1f} changes/s")
            elapsed = time.monotonic() - t0
            time.sleep(1.0)   # load continues a moment after the last change
            stop.set()
            for c in clients:
                c.join(timeout=TIMEOUT_JOIN)
            after_run = old_workers(master_socket)
            settle_start = time.monotonic()
            remaining = after_run
            while remaining > 0 and time.monotonic() - settle_start < args.settle:
                time.sleep(1.0)
                remaining = old_workers(master_socket)
            settled = time.monotonic() - settle_start

            print()
            print(f"{done} member changes in {elapsed:.1f} s: {done / elapsed:.2f} changes/s "
                  f"({elapsed / done * 1000:.0f} ms each, API call to ACTIVE)")
            print(f"{'client':<16} {'requests':>9} {'ok':>9} {'failed':>7} {'connections':>12}")
            for c in clients:
                s = c.stats
                print(f"{s.name:<16} {s.requests:>9} {s.ok:>9} {s.failed:>7} "
                      f"{s.connections:>12}")
                for kind, count in s.failures.most_common():
                    print(f"{'':<16}   {count} x {kind}")
            failed = sum(c.stats.failed for c in clients)
            print(f"failed requests: {failed}   target 0")
            print(f"old haproxy workers: at most {most_old} during the run, {after_run} right "
                  f"after it, {remaining} after {settled:.0f} s more   target <= 2 after 60 s")
        finally:
            stop.set()
            for c in clients:
                c.join(timeout=TIMEOUT_JOIN)
            bed.close()
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if failed == 0 and remaining <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
