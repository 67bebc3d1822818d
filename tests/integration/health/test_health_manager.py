"""The health manager end to end on SQLite, MariaDB and PostgreSQL: heartbeats over a real
UDP socket in, rows out; forged heartbeats change nothing (SEC-5); silent amphorae are
failed over through an operation, or held back by the circuit breaker (HM-1)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from statera.db import models as m
from statera.db.database import Database
from statera.wire import heartbeat as wire
from tests.integration.health.conftest import MASTER, Amphora, Running, Tree, add_tree


def statuses(db: Database, tree: Tree) -> dict[str, str]:
    with db.read() as s:
        out = {"lb": s.get(m.LoadBalancer, tree.lb).operating_status,  # type: ignore[union-attr]
               "listener": s.get(m.Listener, tree.listener).operating_status,  # type: ignore[union-attr]
               "pool": s.get(m.Pool, tree.pool).operating_status}  # type: ignore[union-attr]
        for i, mid in enumerate(tree.members):
            out[f"m{i}"] = s.get(m.Member, mid).operating_status  # type: ignore[union-attr]
        return out


def stats(db: Database, tree: Tree) -> tuple[int, int, int] | None:
    with db.read() as s:
        row = s.get(m.ListenerStatistics, (tree.listener, tree.amphora))
        return None if row is None else (row.bytes_in, row.bytes_out, row.active_connections)


def health(db: Database, amphora_id: str) -> Any:
    with db.read() as s:
        return s.get(m.AmphoraHealth, amphora_id)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the health manager could write, for before/after comparisons."""
    out = {}
    with db.read() as s:
        for model in (m.AmphoraHealth, m.ListenerStatistics, m.Amphora, m.Operation):
            out[model.__tablename__] = sorted(
                tuple(getattr(r, c.key) for c in model.__table__.columns)  # type: ignore[attr-defined]
                for r in s.scalars(sa.select(model)))
        for model in (m.LoadBalancer, m.Listener, m.Pool, m.Member):
            out[model.__tablename__] = sorted(
                (r.id, r.operating_status, r.provisioning_status)
                for r in s.scalars(sa.select(model)))
    return out


def test_heartbeats_in_rows_out(database: Database, start_hm: Callable[..., Running]) -> None:
    tree = add_tree(database)
    hm = start_hm(database)
    amp = Amphora(tree.amphora, hm.clock)
    for i in range(5):
        hm.send(amp.packet(tree, rx=100, tx=1000, conns=i))
    hm.wait_written(5)
    assert statuses(database, tree) == {"lb": "ONLINE", "listener": "ONLINE",
                                        "pool": "ONLINE", "m0": "ONLINE", "m1": "ONLINE"}
    assert stats(database, tree) == (500, 5000, 4)
    row = health(database, tree.amphora)
    assert row is not None and not row.busy
    # A member fails its checks: pool and LB degrade; the next batch adds to the counters.
    hm.send(amp.packet(tree, members={tree.members[0]: "DOWN", tree.members[1]: "UP"}, rx=1))
    hm.wait_written(6)
    assert statuses(database, tree) == {"lb": "DEGRADED", "listener": "ONLINE",
                                        "pool": "DEGRADED", "m0": "ERROR", "m1": "ONLINE"}
    assert stats(database, tree) == (501, 5000, 0)


def test_upstream_mode_accepts_an_upstream_amphora(database: Database,
                                                   start_hm: Callable[..., Running]) -> None:
    tree = add_tree(database)
    hm = start_hm(database, mode=wire.UPSTREAM)
    # As an upstream amphora builds it: default json separators, no send time.
    body = Amphora(tree.amphora, hm.clock, mode=wire.UPSTREAM).message(tree, rx=7)
    del body["t"]
    payload = zlib.compress(json.dumps(body).encode(), 9)
    hm.send(payload + hmac.new(MASTER, payload, hashlib.sha256).hexdigest().encode())
    hm.wait_written(1)
    assert statuses(database, tree)["lb"] == "ONLINE"
    assert stats(database, tree) == (7, 0, 0)


def test_forged_heartbeats_change_nothing_and_do_not_delay_valid_ones(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """SEC-5: bad HMAC, truncated, zip bomb, oversized, replayed, cross-amphora, wrong JSON
    shape and wrong source address: all rejected; a valid heartbeat sent after 2,000 of them
    is still written."""
    victim, other = add_tree(database), add_tree(database, lb_network_ip="127.0.0.1")
    hm = start_hm(database)
    amp = Amphora(victim.amphora, hm.clock)
    first = amp.packet(victim, rx=10)
    hm.send(first)
    hm.wait_written(1)
    before = snapshot(database)

    attacker = Amphora(other.amphora, hm.clock)  # holds its own key only
    forged_down = dict(members=dict.fromkeys(victim.members, "DOWN"), pool="DOWN", rx=10**9)
    bomb = zlib.compress(b"{" + b" " * (8 * 1024 * 1024) + b"}", 9)
    signed_bomb = b"STH1" + victim.amphora.encode() + bomb
    forged: list[tuple[bytes, str]] = [
        (first, "127.0.0.1"),                                           # replayed
        (amp.packet(victim, seq=1), "127.0.0.1"),                       # older sequence
        (wire.encode_per_amphora(amp.message(victim, **forged_down), attacker.key),
         "127.0.0.1"),                                                  # cross-amphora
        (Amphora(victim.amphora, hm.clock, key=b"guessed" * 5).packet(victim, **forged_down),
         "127.0.0.1"),                                                  # bad HMAC
        (amp.packet(victim)[:-10], "127.0.0.1"),                        # cut: bad HMAC
        (amp.packet(victim)[:50], "127.0.0.1"),                         # truncated
        (signed_bomb + b"0" * 64, "127.0.0.1"),                         # unsigned zip bomb
        (b"\x00" * 2000, "127.0.0.1"),                                  # garbage
        (wire.encode_per_amphora({"id": victim.amphora, "seq": 10**12, "ver": 3,
                                  "t": hm.clock(), "listeners": [], "pools": {}},
                                 amp.key), "127.0.0.1"),                # wrong shape
    ]
    # A genuinely signed, newer heartbeat, but from an address that is not the amphora's.
    hm.manager.intake.expected_source[victim.amphora] = "127.0.0.1"
    forged.append((amp.packet(victim, **forged_down), "127.0.0.2"))
    for i in range(2000):
        packet, source = forged[i % len(forged)]
        hm.send(packet, source)
        if i % 200 == 199:  # bounded bursts: the socket buffer never overflows
            hm.wait(lambda n=i: sum(hm.manager.intake.counts.values()) >= n + 2, timeout=30)
    valid = amp.packet(victim, rx=5)
    hm.send(valid)
    hm.wait_written(2)

    after = snapshot(database)
    assert after["listener_statistics"] != before["listener_statistics"]
    assert stats(database, victim) == (15, 0, 0)  # only the two valid deltas
    assert statuses(database, victim)["pool"] == "ONLINE"
    for table in ("amphora", "operation", "load_balancer", "listener", "pool", "member"):
        assert after[table] == before[table], table
    counts = hm.manager.intake.counts
    assert counts["accepted"] == 2
    assert {"replayed", "bad_hmac", "truncated", "bad_shape", "wrong_source"} <= set(counts)
    assert counts["bad_envelope"] > 0


def test_zombie_heartbeats_are_counted_never_acted_on(
        database: Database, start_hm: Callable[..., Running]) -> None:
    tree = add_tree(database)
    with database.write() as s:
        s.get(m.Amphora, tree.amphora).status = "DELETED"  # type: ignore[union-attr]
    hm = start_hm(database)
    before = snapshot(database)
    ghost = Amphora(str(uuid.uuid4()), hm.clock)
    hm.send(ghost.packet(None))
    hm.send(Amphora(tree.amphora, hm.clock).packet(tree, rx=3))
    hm.wait_written(2)
    assert hm.manager.zombies == 2
    assert snapshot(database) == before


def test_silent_amphora_is_failed_over_through_an_operation(
        database: Database, start_hm: Callable[..., Running]) -> None:
    tree, quiet = add_tree(database), add_tree(database)
    woken: list[int] = []
    hm = start_hm(database, wake=lambda: woken.append(1))
    for t in (tree, quiet):
        hm.send(Amphora(t.amphora, hm.clock).packet(t))
    hm.wait_written(2)
    hm.clock.offset = -100.0
    assert hm.manager.check_stale() is None  # nobody is judged right after the start
    hm.clock.offset = 20.0
    hm.send(Amphora(quiet.amphora, hm.clock).packet(quiet, seq=10**13))
    hm.wait_written(3)
    hm.clock.offset = 20.5  # `tree` has been silent for 20 s > heartbeat_timeout
    decision = hm.manager.check_stale()
    assert decision is not None and decision.failover == (tree.amphora,)
    assert woken
    with database.read() as s:
        ops = s.scalars(sa.select(m.Operation)).all()
        assert [(o.kind, o.target_id, o.load_balancer_id) for o in ops] == [
            ("failover_amphora", tree.amphora, tree.lb)]
        assert s.get(m.LoadBalancer, tree.lb).provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
        assert s.get(m.AmphoraHealth, tree.amphora).busy  # type: ignore[union-attr]
        assert s.get(m.LoadBalancer, quiet.lb).provisioning_status == "ACTIVE"  # type: ignore[union-attr]
    # Marked busy: the next look does not start a second failover.
    hm.manager.check_stale()
    with database.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 1


def test_busy_load_balancer_is_left_for_a_later_round(
        database: Database, start_hm: Callable[..., Running]) -> None:
    tree, other = add_tree(database), add_tree(database)
    hm = start_hm(database)
    hm.send(Amphora(tree.amphora, hm.clock).packet(tree))
    hm.send(Amphora(other.amphora, hm.clock).packet(other))
    hm.wait_written(2)
    with database.write() as s:
        s.get(m.LoadBalancer, tree.lb).provisioning_status = "PENDING_UPDATE"  # type: ignore[union-attr]
    hm.clock.offset = 4.0
    hm.send(Amphora(other.amphora, hm.clock).packet(other, seq=10**13))
    hm.wait_written(3)
    hm.manager.check_stale()
    with database.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 0
        assert not s.get(m.AmphoraHealth, tree.amphora).busy  # type: ignore[union-attr]


def test_circuit_breaker_holds_when_everyone_falls_silent_and_recovers(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """HM-1: the health manager hears nobody for 2 x heartbeat_timeout: no failover; the
    amphorae are FAILOVER_STOPPED, then ALLOCATED again when heard."""
    trees = [add_tree(database) for _ in range(3)]
    hm = start_hm(database)
    amps = [Amphora(t.amphora, hm.clock) for t in trees]
    for a, t in zip(amps, trees, strict=True):
        hm.send(a.packet(t))
    hm.wait_written(3)
    hm.clock.offset = 6.0
    decision = hm.manager.check_stale()
    assert decision is not None and decision.opened and decision.failover == ()
    with database.read() as s:
        assert {s.get(m.Amphora, t.amphora).status for t in trees} == {"FAILOVER_STOPPED"}  # type: ignore[union-attr]
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 0
    for a, t in zip(amps, trees, strict=True):
        hm.send(a.packet(t))
    hm.wait_written(6)
    with database.read() as s:
        assert {s.get(m.Amphora, t.amphora).status for t in trees} == {"ALLOCATED"}  # type: ignore[union-attr]
    hm.clock.offset = 6.5
    assert hm.manager.check_stale().failover == ()  # type: ignore[union-attr]
    hm.clock.offset = 10.0  # past the hold: the breaker closes, nobody is silent
    hm.send(amps[0].packet(trees[0]))
    hm.send(amps[1].packet(trees[1]))
    hm.send(amps[2].packet(trees[2]))
    hm.wait_written(9)
    decision = hm.manager.check_stale()
    assert decision is not None and decision.closed and decision.failover == ()
    with database.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 0


def test_a_tree_changed_through_its_load_balancer_is_read_again(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """Trees are remembered between batches; a change of the tree (which always moves its
    load balancer through PENDING_UPDATE) is seen by the next batch."""
    tree = add_tree(database)
    hm = start_hm(database)
    amp = Amphora(tree.amphora, hm.clock)
    hm.send(amp.packet(tree))
    hm.wait_written(1)
    hm.send(amp.packet(tree))
    hm.wait_written(2)
    reads = hm.manager.store.tree_reads
    new_member = str(uuid.uuid4())
    with database.write() as s:
        s.get(m.LoadBalancer, tree.lb).provisioning_status = "PENDING_UPDATE"  # type: ignore[union-attr]
        s.add(m.Member(id=new_member, project_id="p1", pool_id=tree.pool,
                       ip_address="192.0.2.99", protocol_port=80,
                       provisioning_status="PENDING_CREATE", operating_status="OFFLINE",
                       enabled=True))
    with database.write() as s:
        s.get(m.LoadBalancer, tree.lb).provisioning_status = "ACTIVE"  # type: ignore[union-attr]
        s.get(m.Member, new_member).provisioning_status = "ACTIVE"  # type: ignore[union-attr]
    hm.send(amp.packet(tree, members={**dict.fromkeys(tree.members, "UP"), new_member: "DOWN"}))
    hm.wait_written(3)
    assert hm.manager.store.tree_reads > reads
    with database.read() as s:
        assert s.get(m.Member, new_member).operating_status == "ERROR"  # type: ignore[union-attr]
    assert statuses(database, tree)["pool"] == "DEGRADED"


def test_an_amphora_the_compute_driver_sees_dead_is_failed_over_at_once(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """Direct evidence (netns: namespaces, agent, haproxy) needs two looks in a row, no
    start-up grace and no heartbeat timeout; a passing glitch (dead once) changes nothing."""
    tree, fine = add_tree(database), add_tree(database)
    hm = start_hm(database)
    for t in (tree, fine):
        hm.send(Amphora(t.amphora, hm.clock).packet(t))
    hm.wait_written(2)
    with database.read() as s:
        dead_compute = s.get(m.Amphora, tree.amphora).compute_id or tree.amphora  # type: ignore[union-attr]
    seen: list[list[str]] = []

    def unhealthy(ids: list[str]) -> list[str]:
        seen.append(sorted(ids))
        return [c for c in ids if c == dead_compute]

    hm.manager.unhealthy = unhealthy
    hm.clock.offset = 0.5  # still inside the start-up grace for silence
    assert hm.manager.check_stale() is None
    with database.read() as s:  # seen dead once: not yet
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 0
    hm.manager.check_stale()
    with database.read() as s:
        ops = s.scalars(sa.select(m.Operation)).all()
        assert [(o.kind, o.target_id) for o in ops] == [("failover_amphora", tree.amphora)]
        assert s.get(m.LoadBalancer, fine.lb).provisioning_status == "ACTIVE"  # type: ignore[union-attr]
    assert len(seen[0]) == 2  # both amphorae were looked at
    # A glitch: `fine` looks dead on one look only, then well again -> nothing happens.
    hm.manager.unhealthy = lambda ids: [c for c in ids if c != dead_compute]
    hm.manager.check_stale()
    hm.manager.unhealthy = lambda ids: []
    hm.manager.check_stale()
    with database.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(m.Operation)).scalar_one() == 1


def test_an_amphora_dead_before_its_first_heartbeat_is_failed_over(
        database: Database, start_hm: Callable[..., Running]) -> None:
    tree = add_tree(database)
    hm = start_hm(database)
    with database.read() as s:
        assert s.get(m.AmphoraHealth, tree.amphora) is None  # never heard from
        compute = s.get(m.Amphora, tree.amphora).compute_id or tree.amphora  # type: ignore[union-attr]
    hm.manager.unhealthy = lambda ids: [c for c in ids if c == compute]
    hm.manager.check_stale()
    hm.manager.check_stale()
    with database.read() as s:
        ops = s.scalars(sa.select(m.Operation)).all()
        assert [(o.kind, o.target_id) for o in ops] == [("failover_amphora", tree.amphora)]
        assert s.get(m.AmphoraHealth, tree.amphora).busy  # type: ignore[union-attr]


def test_an_amphora_that_missed_a_push_while_held_is_resynced_once_heard(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """A config push skipped the amphora while it was FAILOVER_STOPPED (config_stale): when
    it is heard again, one update_load_balancer operation pushes the config to it; one not
    heard, or whose load balancer is busy, waits."""
    missed, busy, silent = (add_tree(database) for _ in range(3))
    woken: list[int] = []
    hm = start_hm(database, wake=lambda: woken.append(1))
    with database.write() as s:
        for t in (missed, busy, silent):
            s.get(m.Amphora, t.amphora).config_stale = True  # type: ignore[union-attr]
        s.get(m.LoadBalancer, busy.lb).provisioning_status = "PENDING_UPDATE"  # type: ignore[union-attr]
    hm.clock.offset = 4.0  # past the start-up grace
    for t in (missed, busy):
        hm.send(Amphora(t.amphora, hm.clock).packet(t))
    hm.wait_written(2)
    hm.manager.check_stale()
    with database.read() as s:
        ops = s.scalars(sa.select(m.Operation).where(m.Operation.kind != "failover_amphora"))
        assert [(o.kind, o.load_balancer_id, o.payload) for o in ops] == [
            ("update_load_balancer", missed.lb,
             {"reason": "config_stale", "amphora_id": missed.amphora})]
        assert s.get(m.LoadBalancer, missed.lb).provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
    assert woken
    hm.manager.check_stale()  # the load balancer is now busy with it: no second operation
    with database.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.Operation).where(
            m.Operation.kind == "update_load_balancer")) == 1


def test_a_heartbeat_replayed_after_a_restart_is_refused(
        database: Database, start_hm: Callable[..., Running]) -> None:
    """SEC-5 across a restart: the replay guard starts from the sequence numbers written by
    the previous run."""
    tree = add_tree(database)
    first = start_hm(database)
    amp = Amphora(tree.amphora, first.clock)
    captured = amp.packet(tree, rx=100)
    first.send(captured)
    first.wait_written(1)
    assert health(database, tree.amphora).last_seq == amp.seq
    first.manager.flush()

    second = start_hm(database)
    assert second.manager.intake.guard is not None
    assert second.manager.intake.guard.last_seq(tree.amphora) == amp.seq
    assert second.manager.receive(captured, "127.0.0.1") == "replayed"
    fresh = amp.packet(tree, rx=1)
    assert second.manager.receive(fresh, "127.0.0.1") == "accepted"
