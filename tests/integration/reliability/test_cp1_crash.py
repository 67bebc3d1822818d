"""CP-1: ``kill -9`` the worker during 20 concurrent single-call creates, then restart it.

Pass: every load balancer ends ACTIVE (or ERROR with a reason in its operation) at most 30 s
after the restart; nothing is left PENDING_*; no orphan amphorae (every live amphora row
belongs to an ACTIVE load balancer; every amphora the compute driver built is in use or was
deleted again); and no action step recorded as done runs a second time.
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

CREATES = 20
RESTART_BUDGET = 30.0

pytestmark = pytest.mark.slow


def test_kill_worker_during_concurrent_single_call_creates(
        make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(STATERA_NOOP_DRIVERS__DELAY="0.2",
                     STATERA_CONTROLLER_WORKER__WORKERS="8",
                     STATERA_TASK_FLOW__JOBBOARD_EXPIRATION_TIME="3")
    api, worker = c.start_api(), c.start_worker()
    c.wait_api(api)
    c.wait_worker(worker)
    subnet = c.subnet_id()

    responses = burst(CREATES, lambda i: c.create_lb(single_call_body(subnet, f"cp1-{i}")))
    assert [r.status_code for r in responses] == [201] * CREATES, \
        [(r.status_code, r.text[:200]) for r in responses if r.status_code != 201]
    lb_ids = [r.json()["loadbalancer"]["id"] for r in responses]
    for r in responses:
        body = r.json()["loadbalancer"]
        assert body["provisioning_status"] == "PENDING_CREATE"
        assert len(body["listeners"]) == 1 and len(body["pools"]) == 1

    # Kill while flows are in the middle: at least one has built its amphora but not
    # finished, and some load balancers are not even started.
    def mid_flow() -> bool:
        ops = c.operations(lb_ids)
        return any(op.state == "RUNNING" and "BuildAmphorae" in (op.progress or {}).get(
            "done", []) for op in ops) and sum(op.state == "SUCCEEDED" for op in ops) < 15

    wait_for("a create to be past BuildAmphorae", mid_flow, timeout=30, interval=0.05)
    c.kill(worker, signal.SIGKILL)
    at_kill = snapshot_operations(c, lb_ids)
    running = [s for s in at_kill.values() if s.state == "RUNNING"]
    assert running, "the kill came too late: no create was in flight"
    assert all(worker.owns(s.owner) for s in running)
    unfinished = [s for s in at_kill.values() if s.state in ("PENDING", "RUNNING")]

    restarted_at = time.monotonic()
    replacement = c.start_worker()
    wait_for("every load balancer to settle after the restart", lambda: c.settled(lb_ids),
             timeout=RESTART_BUDGET, interval=0.2)
    took = time.monotonic() - restarted_at
    print(f"CP-1: {len(running)} flows in flight and {len(unfinished)} unfinished at the "
          f"kill; all settled {took:.1f}s after the restart")

    assert_settled(c, lb_ids)
    assert_no_orphan_amphorae(c, lb_ids)
    final = {op.id: op for op in c.operations(lb_ids)}
    for snap in unfinished:
        op = final[snap.id]
        assert op.state in ("SUCCEEDED", "FAILED"), (op.id, op.state)
        assert op.claim_count > snap.claim_count, f"operation {op.id} was never resumed"
    lbs = c.load_balancers(lb_ids)
    errors = {i: lb.provisioning_status for i, lb in lbs.items()
              if lb.provisioning_status != "ACTIVE"}
    assert not errors, f"noop creates should all succeed, got {errors}"
    # What the replacement did, it did for the unfinished flows only.
    assert_action_steps_once(c, at_kill, final)
    assert_built_only_planned(c, lb_ids)
    assert any(call["pid"] == replacement.pid for call in c.calls())
    assert c.torn_call_lines <= 1
    assert worker.popen.returncode == -signal.SIGKILL
