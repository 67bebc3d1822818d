"""The status mapping of reference §6, written down as tables of (report -> statuses)."""

from __future__ import annotations

import pytest

from statera.health.status import (
    LbGraph,
    ListenerRow,
    MemberRow,
    PoolRow,
    aggregate,
    listener_count_matches,
    member_status,
    merge_pool_reports,
)
from statera.wire.heartbeat import Heartbeat, ListenerReport, PoolReport

LB, L1, L2, UDP, P1, P2, M1, M2 = (f"00000000-0000-4000-8000-00000000000{i}" for i in range(8))


def graph(lb_status: str = "ACTIVE", lb_enabled: bool = True, lb_op: str = "OFFLINE",
          listeners: tuple[ListenerRow, ...] | None = None,
          pools: tuple[PoolRow, ...] | None = None,
          members: tuple[MemberRow, ...] | None = None) -> LbGraph:
    return LbGraph(
        id=LB, enabled=lb_enabled, provisioning_status=lb_status, operating_status=lb_op,
        listeners=listeners if listeners is not None else (
            ListenerRow(L1, True, "HTTP", "OFFLINE"),),
        pools=pools if pools is not None else (PoolRow(P1, True, "OFFLINE"),),
        members=members if members is not None else (
            MemberRow(M1, P1, True, "OFFLINE"), MemberRow(M2, P1, True, "OFFLINE")))


def beat(listeners: dict[str, str] | None = None,
         pools: dict[str, tuple[str, dict[str, str]]] | None = None) -> Heartbeat:
    listeners = {L1: "OPEN"} if listeners is None else listeners
    pools = {f"{P1}:{L1}": ("UP", {M1: "UP", M2: "UP"})} if pools is None else pools
    return Heartbeat(
        amphora_id="a", seq=1, version=3, sent_at=None,
        listeners={k: ListenerReport(status=v) for k, v in listeners.items()},
        pools={k: PoolReport(status=s, members=m) for k, (s, m) in pools.items()})


def test_all_healthy_is_online_everywhere() -> None:
    c = aggregate(graph(), beat())
    assert c.load_balancers == {LB: "ONLINE"}
    assert c.listeners == {L1: "ONLINE"}
    assert c.pools == {P1: "ONLINE"}
    assert c.members == {M1: "ONLINE", M2: "ONLINE"}


def test_only_changes_are_returned() -> None:
    g = graph(lb_op="ONLINE", listeners=(ListenerRow(L1, True, "HTTP", "ONLINE"),),
              pools=(PoolRow(P1, True, "ONLINE"),),
              members=(MemberRow(M1, P1, True, "ONLINE"), MemberRow(M2, P1, True, "ERROR")))
    c = aggregate(g, beat())
    assert (c.load_balancers, c.listeners, c.pools, c.members) == ({}, {}, {}, {M2: "ONLINE"})
    assert len(c) == 1


@pytest.mark.parametrize(("reported", "member", "pool", "lb"), [
    ("UP", "ONLINE", "ONLINE", "ONLINE"),
    ("UP 1/3", "ONLINE", "ONLINE", "ONLINE"),
    ("DOWN", "ERROR", "DEGRADED", "DEGRADED"),
    ("DOWN 1/2", "ERROR", "DEGRADED", "DEGRADED"),
    ("DRAIN", "DRAINING", "ONLINE", "ONLINE"),
    ("NOLB", "DRAINING", "ONLINE", "ONLINE"),
    ("MAINT", "OFFLINE", "ONLINE", "ONLINE"),
    ("no check", "NO_MONITOR", "ONLINE", "ONLINE"),
])
def test_member_mapping(reported: str, member: str, pool: str, lb: str) -> None:
    c = aggregate(graph(), beat(pools={f"{P1}:{L1}": ("UP", {M1: reported, M2: "UP"})}))
    assert c.members.get(M1, "OFFLINE") == member  # OFFLINE before: no change to write
    assert c.pools[P1] == pool
    assert c.load_balancers[LB] == lb


def test_unknown_member_status_changes_nothing() -> None:
    c = aggregate(graph(), beat(pools={f"{P1}:{L1}": ("UP", {M1: "WEIRD", M2: "UP"})}))
    assert M1 not in c.members


def test_member_not_reported_goes_offline_unless_no_monitor() -> None:
    g = graph(members=(MemberRow(M1, P1, True, "ONLINE"), MemberRow(M2, P1, True, "NO_MONITOR")))
    c = aggregate(g, beat(pools={f"{P1}:{L1}": ("UP", {})}))
    assert c.members == {M1: "OFFLINE"}


@pytest.mark.parametrize(("reported", "pool", "lb"), [
    ("UP", "DEGRADED", "DEGRADED"),
    ("DOWN", "ERROR", "ERROR"),
])
def test_pool_mapping(reported: str, pool: str, lb: str) -> None:
    c = aggregate(graph(), beat(pools={f"{P1}:{L1}": (reported, {M1: "DOWN", M2: "DOWN"})}))
    assert c.pools[P1] == pool
    assert c.load_balancers[LB] == lb


def test_pool_all_members_down_stays_error_not_degraded() -> None:
    c = aggregate(graph(), beat(pools={f"{P1}:{L1}": ("DOWN", {M1: "DOWN", M2: "DOWN"})}))
    assert (c.pools[P1], c.load_balancers[LB]) == ("ERROR", "ERROR")
    assert c.members == {M1: "ERROR", M2: "ERROR"}


def test_pool_reported_by_no_listener_is_offline_and_disabled_pool_is_offline() -> None:
    g = graph(pools=(PoolRow(P1, True, "ONLINE"), PoolRow(P2, False, "ONLINE")))
    c = aggregate(g, beat(pools={}))
    assert c.pools == {P1: "OFFLINE", P2: "OFFLINE"}
    assert c.load_balancers[LB] == "ONLINE"  # neither makes the LB worse


@pytest.mark.parametrize(("reported", "enabled", "lb_status", "listener", "lb"), [
    ("OPEN", True, "ACTIVE", "ONLINE", "ONLINE"),
    ("FULL", True, "ACTIVE", "DEGRADED", "DEGRADED"),
    (None, True, "ACTIVE", "ERROR", "ONLINE"),
    (None, True, "PENDING_UPDATE", "OFFLINE", "ONLINE"),
    (None, False, "ACTIVE", "OFFLINE", "ONLINE"),
    ("OPEN", False, "ACTIVE", "OFFLINE", "ONLINE"),
    ("STOP", True, "ACTIVE", None, "ONLINE"),
])
def test_listener_mapping(reported: str | None, enabled: bool, lb_status: str,
                          listener: str | None, lb: str) -> None:
    g = graph(lb_status=lb_status, listeners=(ListenerRow(L1, enabled, "HTTP", "NO_MONITOR"),))
    c = aggregate(g, beat(listeners={L1: reported} if reported else {}))
    assert c.listeners.get(L1) == listener  # (NO_MONITOR before: every mapping is a change)
    assert c.load_balancers[LB] == lb


def test_udp_listeners_are_left_alone() -> None:
    g = graph(listeners=(ListenerRow(L1, True, "HTTP", "OFFLINE"),
                         ListenerRow(UDP, True, "UDP", "ONLINE")))
    c = aggregate(g, beat())
    assert UDP not in c.listeners
    assert listener_count_matches(g, beat())


def test_disabled_lb_is_offline_whatever_its_children_say() -> None:
    c = aggregate(graph(lb_enabled=False, lb_op="ONLINE"),
                  beat(pools={f"{P1}:{L1}": ("DOWN", {M1: "DOWN", M2: "DOWN"})}))
    assert c.load_balancers == {LB: "OFFLINE"}
    assert c.pools[P1] == "ERROR"


def test_worst_child_wins_for_the_lb() -> None:
    g = graph(listeners=(ListenerRow(L1, True, "HTTP", "OFFLINE"),
                         ListenerRow(L2, True, "HTTP", "OFFLINE")),
              pools=(PoolRow(P1, True, "OFFLINE"), PoolRow(P2, True, "OFFLINE")),
              members=(MemberRow(M1, P1, True, "OFFLINE"), MemberRow(M2, P2, True, "OFFLINE")))
    c = aggregate(g, beat(listeners={L1: "FULL", L2: "OPEN"},
                          pools={f"{P1}:{L1}": ("UP", {M1: "DOWN"}),
                                 f"{P2}:{L2}": ("DOWN", {M2: "DOWN"})}))
    assert c.load_balancers[LB] == "ERROR"
    assert c.pools == {P1: "DEGRADED", P2: "ERROR"}


@pytest.mark.parametrize("status", ["PENDING_CREATE", "PENDING_DELETE", "DELETED"])
def test_lb_being_created_or_deleted_is_left_alone(status: str) -> None:
    assert len(aggregate(graph(lb_status=status), beat())) == 0


def test_pool_reported_by_two_listeners_merges_to_the_worse() -> None:
    merged = merge_pool_reports({
        f"{P1}:{L1}": PoolReport("UP", {M1: "UP", M2: "DOWN"}),
        f"{P1}:{L2}": PoolReport("DOWN", {M1: "DOWN", M2: "UP"}),
    })
    assert merged[P1].status == "DOWN"
    assert merged[P1].members == {M1: "DOWN", M2: "DOWN"}


def test_listener_count_check() -> None:
    g = graph(listeners=(ListenerRow(L1, True, "HTTP", "ONLINE"),
                         ListenerRow(L2, False, "HTTP", "OFFLINE")))
    assert listener_count_matches(g, beat(listeners={L1: "OPEN"}))
    assert not listener_count_matches(g, beat(listeners={}))
    assert not listener_count_matches(g, beat(listeners={L1: "OPEN", L2: "OPEN"}))
    # Not checked while the LB is changing or disabled.
    assert listener_count_matches(graph(lb_status="PENDING_UPDATE"), beat(listeners={}))
    assert listener_count_matches(graph(lb_enabled=False), beat(listeners={}))


def test_member_status_words() -> None:
    assert member_status("UP 2/3") == "ONLINE"
    assert member_status("DOWN (agent)") == "ERROR"
    assert member_status("maint") is None
