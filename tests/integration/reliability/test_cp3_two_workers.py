"""CP-3: two workers; ``kill -9`` the one holding an operation.

Pass: the other worker resumes every operation the dead one held within lease expiry + 5 s,
and no step's side effect happens twice: compute.build is called for exactly the planned
amphora ids (never a second, distinct amphora for one load balancer), an action step recorded
as done is never run again, and the database steps ran once (one amphora row per load
balancer, each step once in the recorded progress).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.integration.reliability.conftest import (
    Cluster,
    assert_action_steps_once,
    assert_built_only_planned,
    assert_no_orphan_amphorae,
    assert_settled,
    burst,
    single_call_body,
    snapshot_operations,
    wait_for,
)

LEASE = 3.0
CREATES = 8

pytestmark = pytest.mark.slow


def test_survivor_resumes_what_the_killed_worker_held(
        make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(STATERA_NOOP_DRIVERS__DELAY="0.25",
                     STATERA_CONTROLLER_WORKER__WORKERS="8",
                     STATERA_TASK_FLOW__JOBBOARD_EXPIRATION_TIME=str(LEASE))
    api, first, second = c.start_api(), c.start_worker(), c.start_worker()
    c.wait_api(api)
    c.wait_worker(first)
    c.wait_worker(second)
    workers = (first, second)
    subnet = c.subnet_id()

    responses = burst(CREATES, lambda i: c.create_lb(single_call_body(subnet, f"cp3-{i}")))
    assert [r.status_code for r in responses] == [201] * CREATES, \
        [r.text[:200] for r in responses if r.status_code != 201]
    lb_ids = [r.json()["loadbalancer"]["id"] for r in responses]

    # The victim: a worker holding an operation that has built its amphora and is not done.
    def holder() -> str | None:
        for op in c.operations(lb_ids):
            done = (op.progress or {}).get("done", [])
            if op.state == "RUNNING" and "BuildAmphorae" in done and "ApplyConfig" not in done:
                return op.owner
        return None

    owner = wait_for("an operation past BuildAmphorae", holder, timeout=30, interval=0.02)
    victim = next(w for w in workers if w.owns(owner))
    survivor = next(w for w in workers if w is not victim)
    killed_at = time.monotonic()
    c.kill(victim, signal.SIGKILL)
    at_kill = snapshot_operations(c, lb_ids)
    held = {s.id: s for s in at_kill.values()
            if s.state == "RUNNING" and victim.owns(s.owner)}
    assert held, "the victim held nothing when it died"

    # Each held operation must be claimed again (claim count up) by the survivor before
    # lease expiry + 5 s, counted from the kill (the lease ran out at most LEASE s later).
    resumed_after: dict[str, float] = {}

    def all_resumed() -> bool:
        now = time.monotonic() - killed_at
        for op in c.operations(lb_ids):
            if op.id in held and op.id not in resumed_after and \
                    op.claim_count > held[op.id].claim_count:
                assert not victim.owns(op.owner)
                resumed_after[op.id] = now
        return len(resumed_after) == len(held)

    wait_for("the survivor to resume the victim's operations", all_resumed,
             timeout=LEASE + 5.0, interval=0.05)
    wait_for("every load balancer to settle", lambda: c.settled(lb_ids), timeout=30,
             interval=0.2)
    print(f"CP-3: victim held {len(held)} operations; resumed after "
          f"{sorted(round(t, 2) for t in resumed_after.values())} s (lease {LEASE}s)")

    assert_settled(c, lb_ids)
    assert all(lb.provisioning_status == "ACTIVE" for lb in c.load_balancers(lb_ids).values())
    assert_no_orphan_amphorae(c, lb_ids)
    final = {op.id: op for op in c.operations(lb_ids)}
    assert all(op.state == "SUCCEEDED" for op in final.values())
    for op_id in held:
        assert final[op_id].claim_count == held[op_id].claim_count + 1, \
            "a held operation was claimed more than once more"
        done = final[op_id].progress["done"]
        assert len(done) == len(set(done)), f"a step recorded twice: {done}"

    # Side effects: the survivor never redid a step the victim had recorded as done.
    assert_action_steps_once(c, at_kill, final)
    assert_built_only_planned(c, lb_ids)
    calls = c.calls()
    for op_id, snap in held.items():
        if "BuildAmphorae" not in snap.done:
            continue
        amp = final[op_id].progress["context"]["new_amphora_ids"][0]
        redone = [call["call"] for call in calls
                  if call["pid"] == survivor.pid and call["args"].get("amphora_id") == amp
                  and call["call"] == "compute.build"]
        assert not redone, f"the survivor built {amp} again after the victim built it"
    # Database steps ran once: one amphora row per load balancer, whatever its status.
    per_lb: dict[str, int] = {}
    for a in c.amphorae():
        if a.load_balancer_id in lb_ids:
            per_lb[a.load_balancer_id] = per_lb.get(a.load_balancer_id, 0) + 1
    assert per_lb == dict.fromkeys(lb_ids, 1)
