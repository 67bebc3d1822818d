"""Operating status from one heartbeat: a pure function of the load balancer as the database
holds it and what its amphora reported (reference §6).

Mapping (the new status is written only when it differs from the current one):

==========  ===================================================================================
object      status
==========  ===================================================================================
listener    OPEN → ONLINE; FULL → DEGRADED (LB DEGRADED); not reported: ERROR if enabled and the
            LB is ACTIVE, else OFFLINE; any other report (STOP…) leaves it as it is
pool        backend UP → ONLINE; DOWN → ERROR (LB ERROR); used by no reported listener →
            OFFLINE; disabled → OFFLINE (Statera: upstream lets HAProxy's DOWN make it ERROR)
member      UP… → ONLINE; DOWN… → ERROR (pool and LB DEGRADED); DRAIN or NOLB → DRAINING;
            MAINT → OFFLINE; "no check" → NO_MONITOR; not reported → OFFLINE unless NO_MONITOR
LB          ONLINE (OFFLINE if disabled), then the worst its children made it
==========  ===================================================================================

Children only ever make the LB worse (ONLINE < DEGRADED < ERROR). UDP and SCTP listeners are
served by LVS, not HAProxy, so heartbeats never carry them and their status is left alone.
A load balancer being created or deleted is left alone too: its amphora reports nothing
meaningful yet (or any more).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from statera.domain.enums import OperatingStatus as O
from statera.domain.enums import ProvisioningStatus as P
from statera.wire.heartbeat import Heartbeat, PoolReport

NOT_HAPROXY = frozenset({"UDP", "SCTP"})
_SEVERITY: dict[str, int] = {O.ONLINE: 0, O.DEGRADED: 1, O.ERROR: 2}
_SKIP_LB = frozenset({P.PENDING_CREATE, P.PENDING_DELETE, P.DELETED})


class ListenerRow(NamedTuple):
    id: str
    enabled: bool
    protocol: str
    operating_status: str


class PoolRow(NamedTuple):
    id: str
    enabled: bool
    operating_status: str


class MemberRow(NamedTuple):
    id: str
    pool_id: str
    enabled: bool
    operating_status: str


class LbGraph(NamedTuple):
    """The part of one load balancer the status mapping reads (live objects only)."""

    id: str
    enabled: bool
    provisioning_status: str
    operating_status: str
    listeners: tuple[ListenerRow, ...] = ()
    pools: tuple[PoolRow, ...] = ()
    members: tuple[MemberRow, ...] = ()


@dataclass
class StatusChanges:
    """New operating statuses by object id, only those that differ from the database."""

    load_balancers: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, str] = field(default_factory=dict)
    pools: dict[str, str] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)

    def update(self, other: StatusChanges) -> None:
        self.load_balancers.update(other.load_balancers)
        self.listeners.update(other.listeners)
        self.pools.update(other.pools)
        self.members.update(other.members)

    def __len__(self) -> int:
        return (len(self.load_balancers) + len(self.listeners) + len(self.pools)
                + len(self.members))


def _worse(current: str, candidate: str) -> str:
    if current not in _SEVERITY:  # OFFLINE: a disabled load balancer stays OFFLINE
        return current
    return candidate if _SEVERITY[candidate] > _SEVERITY[current] else current


def member_status(reported: str) -> str | None:
    """A member's operating status from HAProxy's server status, None if unknown."""
    if reported.startswith("UP"):
        return O.ONLINE
    if reported.startswith("DOWN"):
        return O.ERROR
    if reported.startswith(("DRAIN", "NOLB")):
        return O.DRAINING
    if reported.startswith("MAINT"):
        return O.OFFLINE
    if reported == "no check":
        return O.NO_MONITOR
    return None


def merge_pool_reports(pools: Mapping[str, PoolReport]) -> dict[str, PoolReport]:
    """Backends are per (pool, listener); a pool used by two listeners is reported twice.
    Merged by pool id, the worse report wins (DOWN over UP, for the pool and each member)."""
    rank: dict[str, int] = {O.ERROR: 3, O.OFFLINE: 2, O.DRAINING: 1}
    merged: dict[str, PoolReport] = {}
    for key, report in pools.items():
        pool_id = key.partition(":")[0]
        seen = merged.get(pool_id)
        if seen is None:
            merged[pool_id] = report
            continue
        status = "DOWN" if "DOWN" in (seen.status, report.status) else seen.status
        members = dict(seen.members)
        for member_id, raw in report.members.items():
            old = members.get(member_id)
            if old is None or (rank.get(member_status(raw) or "", 0)
                               > rank.get(member_status(old) or "", 0)):
                members[member_id] = raw
        merged[pool_id] = PoolReport(status=status, members=members)
    return merged


def haproxy_listeners(graph: LbGraph) -> list[ListenerRow]:
    return [li for li in graph.listeners if li.protocol not in NOT_HAPROXY]


def listener_count_matches(graph: LbGraph, hb: Heartbeat) -> bool:
    """Does the amphora serve as many listeners as it should? Not checked while the load
    balancer is disabled or changing (upstream's rule: a mismatch withholds the health
    refresh, so an amphora that lost its listeners is eventually failed over)."""
    if not graph.enabled or graph.provisioning_status != P.ACTIVE:
        return True
    expected = sum(1 for li in haproxy_listeners(graph) if li.enabled)
    return len(hb.listeners) == expected


def aggregate(graph: LbGraph, hb: Heartbeat) -> StatusChanges:
    changes = StatusChanges()
    if graph.provisioning_status in _SKIP_LB:
        return changes
    lb_status: str = O.ONLINE if graph.enabled else O.OFFLINE
    lb_active = graph.provisioning_status == P.ACTIVE

    def put(target: dict[str, str], obj_id: str, current: str, new: str | None) -> None:
        if new is not None and new != current:
            target[obj_id] = new

    for li in haproxy_listeners(graph):
        report = hb.listeners.get(li.id)
        new: str | None
        if report is None:
            new = O.ERROR if li.enabled and lb_active else O.OFFLINE
        elif not li.enabled:
            new = O.OFFLINE
        elif report.status == "OPEN":
            new = O.ONLINE
        elif report.status == "FULL":
            new = O.DEGRADED
            lb_status = _worse(lb_status, O.DEGRADED)
        else:
            new = None
        put(changes.listeners, li.id, li.operating_status, new)

    reports = merge_pool_reports(hb.pools)
    members_of: dict[str, list[MemberRow]] = {}
    for member in graph.members:
        members_of.setdefault(member.pool_id, []).append(member)
    for pool in graph.pools:
        pool_report = reports.get(pool.id)
        if not pool.enabled:
            put(changes.pools, pool.id, pool.operating_status, O.OFFLINE)
            continue
        if pool_report is None:
            put(changes.pools, pool.id, pool.operating_status, O.OFFLINE)
            continue
        pool_status: str | None
        if pool_report.status == "UP":
            pool_status = O.ONLINE
        elif pool_report.status == "DOWN":
            pool_status = O.ERROR
            lb_status = _worse(lb_status, O.ERROR)
        else:
            pool_status = None
        for member in members_of.get(pool.id, ()):
            raw = pool_report.members.get(member.id)
            if raw is None:
                new = None if member.operating_status == O.NO_MONITOR else O.OFFLINE
            else:
                new = member_status(raw)
                if new == O.ERROR and pool_status == O.ONLINE:
                    pool_status = O.DEGRADED
                    lb_status = _worse(lb_status, O.DEGRADED)
            put(changes.members, member.id, member.operating_status, new)
        put(changes.pools, pool.id, pool.operating_status, pool_status)

    put(changes.load_balancers, graph.id, graph.operating_status, lb_status)
    return changes


def reported_listener_ids(graphs: Iterable[LbGraph]) -> set[str]:
    """Listener ids that statistics may be written for."""
    return {li.id for g in graphs for li in g.listeners}
