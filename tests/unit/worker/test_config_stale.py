"""A config push skips an amphora held in FAILOVER_STOPPED (it is silent and probably
unreachable) and marks it ``config_stale``; once it is heard again the health manager's
resync pushes the load balancer's config to it, and the flag clears."""

from __future__ import annotations

import sqlalchemy as sa

from statera.db import models as m
from statera.health.stale import submit_resync
from tests.conftest import Api


def _amphora(api: Api, lb_id: str) -> m.Amphora:
    with api.deps.db.read() as s:
        amp = s.scalars(sa.select(m.Amphora).where(m.Amphora.load_balancer_id == lb_id,
                                                   m.Amphora.status != "DELETED")).one()
        s.expunge(amp)
    return amp


def _set_status(api: Api, amphora_id: str, status: str) -> None:
    with api.deps.db.write() as s:
        s.execute(sa.update(m.Amphora).where(m.Amphora.id == amphora_id).values(status=status))


def _pushes(api: Api, amphora_id: str) -> int:
    return sum(1 for c in api.drivers.calls.of("apply_config") if c["amphora_id"] == amphora_id)


def _lb_status(api: Api, lb_id: str) -> str:
    return str(api.get(f"/v2/lbaas/loadbalancers/{lb_id}")["loadbalancer"][
        "provisioning_status"])


def _add_listener(api: Api, lb_id: str, port: int) -> None:
    api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": port}})
    api.settle()


def test_a_held_amphora_is_skipped_marked_and_resynced_once_heard(api: Api) -> None:
    lb = api.make_lb()
    amp = _amphora(api, lb["id"])
    _set_status(api, amp.id, "FAILOVER_STOPPED")
    before = _pushes(api, amp.id)

    _add_listener(api, lb["id"], 80)

    assert _lb_status(api, lb["id"]) == "ACTIVE"  # the change does not wait on the held one
    assert _pushes(api, amp.id) == before
    assert _amphora(api, lb["id"]).config_stale
    # Still held: nothing to resync yet.
    assert not submit_resync(api.deps.db, amp.id)

    _set_status(api, amp.id, "ALLOCATED")  # what the health store does when it is heard
    assert submit_resync(api.deps.db, amp.id)
    assert _lb_status(api, lb["id"]) == "PENDING_UPDATE"
    assert not submit_resync(api.deps.db, amp.id)  # one resync at a time
    api.settle()

    assert _lb_status(api, lb["id"]) == "ACTIVE"
    assert _pushes(api, amp.id) == before + 1
    assert not _amphora(api, lb["id"]).config_stale
    with api.deps.db.read() as s:
        op = s.scalars(sa.select(m.Operation).where(m.Operation.request_id == "health-manager")
                       ).one()
        assert (op.kind, op.state, op.payload["reason"]) == (
            "update_load_balancer", "SUCCEEDED", "config_stale")


def test_a_busy_load_balancer_is_left_for_later_and_its_own_push_clears_the_flag(
        api: Api) -> None:
    lb = api.make_lb()
    amp = _amphora(api, lb["id"])
    _set_status(api, amp.id, "FAILOVER_STOPPED")
    _add_listener(api, lb["id"], 80)
    _set_status(api, amp.id, "ALLOCATED")
    before = _pushes(api, amp.id)

    # A tenant change is already under way: the resync is not needed, and not started.
    api.post("/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 81}})
    assert not submit_resync(api.deps.db, amp.id)
    api.settle()

    assert _pushes(api, amp.id) == before + 1
    assert not _amphora(api, lb["id"]).config_stale
    assert not submit_resync(api.deps.db, amp.id)
