"""CP-4: SIGTERM the worker in the middle of flows.

Two ways a worker may leave, both checked on one API and database:

* graceful: with time to spare (graceful_shutdown_timeout), the flows it runs finish before
  it exits, by that worker, and it claims nothing new; a restarted worker does the rest.
* hand-over: with no time to spare, each flow stops at its next step boundary and is released
  at once (owner cleared), so a restarted worker resumes it immediately (well before the
  lease, deliberately long here, would have run out) and no step runs twice.

Either way nothing is left PENDING_*.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.integration.reliability.conftest import (
    METHOD_STEP,
    Cluster,
    OpSnapshot,
    Proc,
    assert_action_steps_once,
    assert_built_only_planned,
    assert_no_orphan_amphorae,
    assert_settled,
    burst,
    cluster_on,
    planned_amphorae,
    single_call_body,
    snapshot_operations,
    wait_for,
)

CREATES = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One API and database for both scenarios (workers are each test's own)."""
    with cluster_on("sqlite", tmp_path_factory.mktemp("cp4"),
                    STATERA_CONTROLLER_WORKER__WORKERS="4") as cluster:
        cluster.wait_api(cluster.start_api())
        yield cluster


@pytest.fixture
def c(shared: Cluster) -> Iterator[Cluster]:
    yield shared
    for proc in shared.procs:  # no worker of one scenario may run into the next
        if proc.role.startswith("worker") and proc.alive():
            shared.kill(proc, signal.SIGKILL)


def _create(c: Cluster, tag: str) -> list[str]:
    subnet = c.subnet_id()
    responses = burst(CREATES, lambda i: c.create_lb(single_call_body(subnet, f"{tag}-{i}")))
    assert [r.status_code for r in responses] == [201] * CREATES, \
        [r.text[:200] for r in responses if r.status_code != 201]
    return [r.json()["loadbalancer"]["id"] for r in responses]


def _sigterm_mid_flow(c: Cluster, worker: Proc, lb_ids: list[str]
                      ) -> tuple[dict[str, OpSnapshot], float]:
    """SIGTERM once a flow is past BuildAmphorae and before ApplyConfig; return what the
    operations looked like right then and how long the worker took to exit."""
    def mid_flow() -> bool:
        for op in c.operations(lb_ids):
            done = (op.progress or {}).get("done", [])
            if op.state == "RUNNING" and "BuildAmphorae" in done and "ApplyConfig" not in done:
                return True
        return False

    wait_for("a flow past BuildAmphorae", mid_flow, timeout=30, interval=0.02)
    at_term = snapshot_operations(c, lb_ids)
    took = c.kill(worker, signal.SIGTERM, timeout=40)
    assert worker.popen.returncode == 0, f"worker exited {worker.popen.returncode}:\n" \
        f"{worker.tail()}"
    return at_term, took


def _settle_and_check(c: Cluster, lb_ids: list[str]) -> None:
    wait_for("every load balancer to settle", lambda: c.settled(lb_ids), timeout=40,
             interval=0.2)
    assert_settled(c, lb_ids)
    assert all(lb.provisioning_status == "ACTIVE"
               for lb in c.load_balancers(lb_ids).values())
    assert_no_orphan_amphorae(c, lb_ids)
    assert_built_only_planned(c, lb_ids)
    # Neither way of leaving repeats a step: every driver call happened exactly once.
    final = {op.id: op for op in c.operations(lb_ids)}
    assert_action_steps_once(c, {}, final)


def test_graceful_sigterm_lets_running_flows_finish(c: Cluster) -> None:
    worker = c.start_worker(STATERA_NOOP_DRIVERS__DELAY="0.2",
                            STATERA_CONTROLLER_WORKER__GRACEFUL_SHUTDOWN_TIMEOUT="25")
    lb_ids = _create(c, "cp4g")
    at_term, took = _sigterm_mid_flow(c, worker, lb_ids)
    running = [s for s in at_term.values() if s.state == "RUNNING"]
    assert running

    after = {op.id: op for op in c.operations(lb_ids)}
    for snap in running:
        op = after[snap.id]
        assert op.state == "SUCCEEDED", f"{op.id} was running at SIGTERM and is {op.state}"
        assert op.claim_count == snap.claim_count, "finished by someone else"
    left = [op for op in after.values() if op.state != "SUCCEEDED"]
    for op in left:  # what it had not started, it left for others, unclaimed
        assert op.state == "PENDING" and op.owner is None, (op.id, op.state, op.owner)
    print(f"CP-4 graceful: {len(running)} running at SIGTERM finished; exit after "
          f"{took:.1f}s; {len(left)} left for the next worker")

    c.start_worker(STATERA_NOOP_DRIVERS__DELAY="0.2")
    _settle_and_check(c, lb_ids)


def test_sigterm_without_grace_hands_flows_over(c: Cluster) -> None:
    # The lease is long: a resume that waited for it instead of the release would time out.
    lease = {"STATERA_TASK_FLOW__JOBBOARD_EXPIRATION_TIME": "60"}
    worker = c.start_worker(STATERA_NOOP_DRIVERS__DELAY="0.3",
                            STATERA_CONTROLLER_WORKER__GRACEFUL_SHUTDOWN_TIMEOUT="0", **lease)
    lb_ids = _create(c, "cp4h")
    at_term, took = _sigterm_mid_flow(c, worker, lb_ids)
    assert took < 15, f"a worker without grace took {took:.1f}s to leave"

    after = {op.id: op for op in c.operations(lb_ids)}
    held_by_dead = [op.id for op in after.values() if worker.owns(op.owner)]
    assert not held_by_dead, f"operations still owned by the stopped worker: {held_by_dead}"
    handed = [op for op in after.values() if op.state == "RUNNING"]
    assert handed, "nothing was handed over: SIGTERM came after every flow had finished"
    for op in handed:
        assert op.owner is None and op.lease_expires_at is None
        assert op.id in at_term and at_term[op.id].state == "RUNNING"

    replacement = c.start_worker(STATERA_NOOP_DRIVERS__DELAY="0.3", **lease)
    c.wait_worker(replacement)
    ready_at = time.monotonic()
    wait_for("the handed-over operations to be claimed again",
             lambda: all(op.claim_count > after[op.id].claim_count
                         for op in c.operations(lb_ids) if op.id in {h.id for h in handed}),
             timeout=5, interval=0.05)
    print(f"CP-4 hand-over: {len(handed)} handed over; exit after {took:.1f}s; resumed "
          f"{time.monotonic() - ready_at:.2f}s after the new worker started")
    _settle_and_check(c, lb_ids)
    # Each step of a handed-over flow ran in exactly one process: the steps done before the
    # hand-over in the stopped worker, all the others in the replacement.
    final = {op.id: op for op in c.operations(lb_ids)}
    for op in handed:
        amp = planned_amphorae(final[op.id])[0]
        done_before = (op.progress or {}).get("done", [])
        for call in c.calls():
            if call["args"].get("amphora_id") != amp or call["call"] not in METHOD_STEP:
                continue
            expected = worker.pid if METHOD_STEP[call["call"]] in done_before \
                else replacement.pid
            assert call["pid"] == expected, (op.load_balancer_id, call["call"], done_before)
