"""bench/dataplane: HTTP throughput through Statera's load balancer beside its peers.

A testbed of namespaces (``bench.testbed``: a real ``statera up`` with the netns, bridge and
REST drivers, its own bridges and CIDRs) with two fast members (one-thread HAProxy answering
200), a client namespace running wrk, and three targets given the same wrk load in
interleaved rounds (A/B/A/B…):

  (a) direct      a member itself
  (b) hand-tuned  an HAProxy with a hand-written config (bench/dataplane/load.py) in its own
                  namespace, round robin over both members, same haproxy binary
  (c) statera     a load balancer created through the API (HTTP listener, ROUND_ROBIN, the
                  same members), i.e. the rendered haproxy.cfg run by the agent

Prints requests/s, p50/p99 latency and proxy CPU per request for each, and the ratios
(c)/(b) and (c)/(a), paired per round. Target: (c) >= 0.95 x (b). Needs root, haproxy, wrk.

    .venv/bin/python -m bench.dataplane [--duration 8] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.dataplane.load import (
    PROXY_PORT,
    WrkResult,
    add_fast_members,
    add_hand_tuned,
    cpu_seconds,
    create_statera_lb,
    rendered_config,
    run_wrk,
)
from bench.testbed import MEMBER_PORT, Member, Testbed, missing_requirements


@dataclass
class Target:
    label: str
    url: str
    config: Path | None = None
    """The proxy's haproxy.cfg, to account its CPU; None for the member itself."""
    runs: list[WrkResult] = field(default_factory=list)
    cpu_per_request_us: list[float] = field(default_factory=list)


def measure(target: Target, client: Member, args: argparse.Namespace) -> WrkResult:
    before = cpu_seconds(target.config) if target.config else 0.0
    result = run_wrk(client, target.url, args.duration, args.connections, args.threads)
    if target.config:
        spent = cpu_seconds(target.config) - before
        target.cpu_per_request_us.append(spent / max(1, result.requests) * 1e6)
    target.runs.append(result)
    return result


def row(label: str, runs: list[WrkResult], cpu: list[float]) -> str:
    rps = statistics.median(r.rps for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    errors = sum(r.errors for r in runs)
    cpu_text = f"{statistics.median(cpu):>10.1f}" if cpu else f"{'-':>10}"
    return f"{label:<22} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f} {cpu_text} {errors:>7}"


def paired(num: Target, den: Target) -> list[float]:
    return [n.rps / d.rps for n, d in zip(num.runs, den.runs, strict=True) if d.rps]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds of load per target per round (default 8)")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds over the three targets (default 3)")
    parser.add_argument("--nbthread", type=int, default=1,
                        help="threads of the hand-tuned HAProxy (default 1, as Statera's)")
    parser.add_argument("--show-configs", action="store_true",
                        help="print the hand-tuned and the rendered haproxy.cfg")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or not 1 <= args.connections <= 2000:
        parser.error("--duration >= 1, --rounds >= 1, 1 <= --connections <= 2000")
    problem = missing_requirements()
    if problem:
        print(f"bench.dataplane: {problem}", file=sys.stderr)
        return 2

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statera-bench-dp-") as tmp:
        bed = Testbed.start(Path(tmp), members=0)
        try:
            members = add_fast_members(bed, 2)
            proxy = add_hand_tuned(bed, members, args.nbthread)
            client = bed.add_namespace("client", str(list(bed.tenant_net.hosts())[9]))
            lb_id, vip = create_statera_lb(bed, members)
            rendered = rendered_config(bed, lb_id)
            targets = [
                Target("(a) direct member", f"http://{members[0].address}:{MEMBER_PORT}/"),
                Target("(b) hand-tuned haproxy", f"http://{proxy.address}:{PROXY_PORT}/",
                       bed.workdir / "hand-tuned.haproxy.cfg"),
                Target("(c) statera LB", f"http://{vip}:{PROXY_PORT}/", rendered),
            ]
            print(f"testbed up in {time.monotonic() - started:.1f} s; wrk -t{args.threads} "
                  f"-c{args.connections} -d{args.duration:g}s, {args.rounds} rounds; "
                  f"hand-tuned nbthread {args.nbthread}")
            for t in targets:          # warm-up: connections, ARP, page cache
                run_wrk(client, t.url, 1, args.connections, args.threads)
            for n in range(args.rounds):
                # Rotate the order each round so no target always runs first or last.
                order = targets[n % 3:] + targets[:n % 3]
                for t in order:
                    r = measure(t, client, args)
                    print(f"  round {n + 1} {t.label:<22} {r.rps:>10.0f} req/s  "
                          f"p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms  errors {r.errors}")
            print()
            print(f"{'target (median)':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
                  f"{'CPU us/req':>10} {'errors':>7}")
            for t in targets:
                print(row(t.label, t.runs, t.cpu_per_request_us))
            a, b, c = targets
            cb, ca = paired(c, b), paired(c, a)
            print()
            print(f"(c)/(b) = {statistics.median(cb):.3f}  per round: "
                  + " ".join(f"{x:.3f}" for x in cb) + "   target >= 0.95")
            print(f"(c)/(a) = {statistics.median(ca):.3f}  per round: "
                  + " ".join(f"{x:.3f}" for x in ca))
            if b.cpu_per_request_us and c.cpu_per_request_us:
                cpu_ratio = (statistics.median(c.cpu_per_request_us)
                             / statistics.median(b.cpu_per_request_us))
                print(f"proxy CPU per request (c)/(b) = {cpu_ratio:.3f}   target <= 1.1")
            if args.show_configs:
                for path in (targets[1].config, rendered):
                    assert path is not None
                    print(f"\n--- {path}\n{path.read_text()}")
            ok = statistics.median(cb) >= 0.95
        finally:
            bed.close()
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
