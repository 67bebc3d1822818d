"""Writing one batch of heartbeats: one transaction, whatever the number of heartbeats.

Per batch: read the amphorae it names and the load balancers they serve (a few bulk
SELECTs), compute every status change in memory (health/status.py), then write
``amphora_health`` (upsert), the operating statuses that changed (one UPDATE per table and
status) and ``listener_statistics`` (upsert adding the deltas; active connections replaced).
Only ``operating_status`` is ever written: provisioning statuses belong to the API and the
worker.

Heartbeats of amphorae that are unknown or DELETED ("zombies") and of amphorae sending from
an address other than their management address change nothing; they are reported back so
the health manager can count and log them. Nothing is ever deleted because of a heartbeat.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.database import Database
from statera.domain.enums import AmphoraStatus as A
from statera.domain.enums import ProvisioningStatus as P
from statera.health.intake import Batch, Received
from statera.health.status import (
    LbGraph,
    ListenerRow,
    MemberRow,
    PoolRow,
    StatusChanges,
    aggregate,
    listener_count_matches,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 500
# Amphorae whose heartbeats refresh their health row; only those serving a load balancer
# (ALLOCATED, or FAILOVER_STOPPED while the circuit breaker holds) also write statuses.
HEALTH_TRACKED = frozenset({A.PENDING_CREATE, A.BOOTING, A.READY, A.ALLOCATED,
                            A.FAILOVER_STOPPED})
SERVING = frozenset({A.ALLOCATED, A.FAILOVER_STOPPED})


@dataclass
class FlushResult:
    heartbeats: int = 0
    amphorae: int = 0
    refreshed: int = 0
    recovered: list[str] = field(default_factory=list)
    zombies: list[str] = field(default_factory=list)
    wrong_source: list[str] = field(default_factory=list)
    listener_mismatch: list[str] = field(default_factory=list)
    status_changes: int = 0
    stats_rows: int = 0
    sources: dict[str, str] = field(default_factory=dict)


def as_db_time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _rows(session: Session, stmt_for: Any, ids: Sequence[str]) -> list[Any]:
    # Core execution on the session's connection: plain rows, no ORM result processing.
    conn = session.connection()
    out: list[Any] = []
    for chunk in _chunks(ids):
        out.extend(conn.execute(stmt_for(chunk)).all())
    return out


def load_graphs(session: Session, lb_ids: Sequence[str]) -> dict[str, LbGraph]:
    LB, L, PL, M = m.LoadBalancer, m.Listener, m.Pool, m.Member
    lbs = _rows(session, lambda c: sa.select(
        LB.id, LB.enabled, LB.provisioning_status, LB.operating_status).where(LB.id.in_(c)),
        lb_ids)
    listeners: dict[str, list[ListenerRow]] = defaultdict(list)
    for r in _rows(session, lambda c: sa.select(
            L.id, L.load_balancer_id, L.enabled, L.protocol, L.operating_status).where(
            L.load_balancer_id.in_(c), L.provisioning_status != P.DELETED), lb_ids):
        listeners[r.load_balancer_id].append(
            ListenerRow(r.id, bool(r.enabled), r.protocol, r.operating_status))
    pools: dict[str, list[PoolRow]] = defaultdict(list)
    for r in _rows(session, lambda c: sa.select(
            PL.id, PL.load_balancer_id, PL.enabled, PL.operating_status).where(
            PL.load_balancer_id.in_(c), PL.provisioning_status != P.DELETED), lb_ids):
        pools[r.load_balancer_id].append(PoolRow(r.id, bool(r.enabled), r.operating_status))
    members: dict[str, list[MemberRow]] = defaultdict(list)
    for r in _rows(session, lambda c: sa.select(
            M.id, M.pool_id, M.enabled, M.operating_status, PL.load_balancer_id)
            .join(PL, PL.id == M.pool_id)
            .where(PL.load_balancer_id.in_(c), M.provisioning_status != P.DELETED), lb_ids):
        members[r.load_balancer_id].append(
            MemberRow(r.id, r.pool_id, bool(r.enabled), r.operating_status))
    return {r.id: LbGraph(id=r.id, enabled=bool(r.enabled),
                          provisioning_status=r.provisioning_status,
                          operating_status=r.operating_status,
                          listeners=tuple(listeners[r.id]), pools=tuple(pools[r.id]),
                          members=tuple(members[r.id]))
            for r in lbs if r.provisioning_status != P.DELETED}


# ---- dialect-specific upserts ----------------------------------------------------------------


def _insert(session: Session, table: sa.Table) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.mysql import insert as mysql_insert

    return mysql_insert(table)


def _upsert(session: Session, table: sa.Table, keys: list[str], rows: list[dict[str, Any]],
            update: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE; ``update`` maps a column to a function
    of (the table, the proposed row). An executemany: SQLite loops in C and PyMySQL sends
    multi-row statements; PostgreSQL takes the rows as arrays instead (``_pg_upsert``)."""
    if not rows:
        return
    name = session.get_bind().dialect.name
    if name == "postgresql":
        _pg_upsert(session, table, keys, rows, update)
        return
    stmt = _insert(session, table)
    if name == "sqlite":
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={col: fn(table.c, stmt.excluded) for col, fn in update.items()})
    else:
        stmt = stmt.on_duplicate_key_update(
            {col: fn(table.c, stmt.inserted) for col, fn in update.items()})
    for chunk in _chunks(rows):
        session.execute(stmt, list(chunk))


def _pg_upsert(session: Session, table: sa.Table, keys: list[str], rows: list[dict[str, Any]],
               update: dict[str, Any]) -> None:
    """One statement whatever the number of rows: ``INSERT ... SELECT FROM unnest(arrays)``
    (psycopg runs an executemany of upserts as one statement per row)."""
    from sqlalchemy.dialects import postgresql

    cols = list(rows[0])
    stmt = postgresql.insert(table)
    set_ = {col: fn(table.c, stmt.excluded) for col, fn in update.items()}
    arrays = sa.select(*(sa.func.unnest(sa.cast(sa.bindparam(f"a_{c}"),
                                                 sa.ARRAY(table.c[c].type)))
                         for c in cols))
    stmt = stmt.from_select(cols, arrays).on_conflict_do_update(index_elements=keys, set_=set_)
    session.execute(stmt, {f"a_{c}": [r[c] for r in rows] for c in cols})


def _greatest(session: Session) -> Any:
    return sa.func.max if session.get_bind().dialect.name == "sqlite" else sa.func.greatest


def upsert_health(session: Session, rows: list[dict[str, Any]]) -> None:
    """last_update and last_seq only move forward (two health managers may write the same
    amphora)."""
    greatest = _greatest(session)
    _upsert(session, m.AmphoraHealth.__table__, ["amphora_id"],  # type: ignore[arg-type]
            sorted(rows, key=lambda r: r["amphora_id"]),
            {"last_update": lambda c, new: greatest(c.last_update, new.last_update),
             "busy": lambda c, new: new.busy,
             "last_seq": lambda c, new: greatest(sa.func.coalesce(c.last_seq, new.last_seq),
                                                 new.last_seq)})


def last_sequences(db: Database) -> dict[str, int]:
    """The highest heartbeat sequence number written for each amphora: the replay guard's
    memory across a health-manager restart."""
    with db.read() as session:
        return {r.amphora_id: int(r.last_seq) for r in session.execute(
            sa.select(m.AmphoraHealth.amphora_id, m.AmphoraHealth.last_seq)
            .where(m.AmphoraHealth.last_seq.is_not(None)))}


def add_statistics(session: Session, rows: list[dict[str, Any]]) -> None:
    def add(col: str) -> Any:
        return lambda c, new: getattr(c, col) + getattr(new, col)

    _upsert(session, m.ListenerStatistics.__table__,  # type: ignore[arg-type]
            ["listener_id", "amphora_id"],
            sorted(rows, key=lambda r: (r["listener_id"], r["amphora_id"])),
            {"bytes_in": add("bytes_in"), "bytes_out": add("bytes_out"),
             "active_connections": lambda c, new: new.active_connections,
             "total_connections": add("total_connections"),
             "request_errors": add("request_errors")})


def write_statuses(session: Session, changes: StatusChanges) -> None:
    for model, by_id in ((m.Member, changes.members), (m.Pool, changes.pools),
                         (m.Listener, changes.listeners),
                         (m.LoadBalancer, changes.load_balancers)):
        grouped: dict[str, list[str]] = defaultdict(list)
        for obj_id, status in by_id.items():
            grouped[status].append(obj_id)
        for status, ids in grouped.items():
            for chunk in _chunks(sorted(ids)):
                session.execute(
                    sa.update(model).where(model.id.in_(chunk))  # type: ignore[attr-defined]
                    .values(operating_status=status)
                    .execution_options(synchronize_session=False))


# ---- one batch -------------------------------------------------------------------------------


def _with_changes(graph: LbGraph, changes: StatusChanges) -> LbGraph:
    """The graph as it is once ``changes`` are written (children only)."""
    def new(rows: tuple[Any, ...], by_id: dict[str, str]) -> tuple[Any, ...]:
        return tuple(r._replace(operating_status=by_id[r.id]) if r.id in by_id else r
                     for r in rows)

    return graph._replace(listeners=new(graph.listeners, changes.listeners),
                          pools=new(graph.pools, changes.pools),
                          members=new(graph.members, changes.members))


class HealthStore:
    """Writes batches; remembers each load balancer's children between batches.

    Reading a load balancer's listeners, pools and members for every batch would cost five
    rows per amphora. Every change of a tree goes through its load balancer row (PENDING_*
    and back, which moves ``updated_at``), so a tree is read again only when that row's
    version changed, when this store changed the load balancer's own status, or after
    ``ttl`` seconds (a second health manager may have changed a member's status).
    """

    def __init__(self, db: Database, *, ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl = ttl
        self.clock = clock
        self._graphs: dict[str, tuple[tuple[Any, ...], float, LbGraph]] = {}
        self._pruned = clock()
        self.tree_reads = 0
        # (amphora, listener) -> active connections last written.
        self._active: dict[tuple[str, str], int] = {}
        # Amphora -> (tree, report) whose aggregation found nothing to change.
        self._quiet: dict[str, tuple[LbGraph, Any]] = {}

    def write(self, batch: Batch) -> FlushResult:
        """Write a batch in one transaction (retried whole on a deadlock)."""
        if not batch:
            return FlushResult()
        cache: dict[str, tuple[tuple[Any, ...], float, LbGraph] | None] = {}
        active: dict[tuple[str, str], int] = {}

        def work(session: Session) -> FlushResult:
            cache.clear()
            active.clear()
            return self._apply(session, batch, cache, active)

        result: FlushResult = self.db.write_retrying(work)
        self._active.update(active)
        # Only what a committed transaction read or wrote is remembered.
        for lb_id, entry in cache.items():
            if entry is None:
                self._graphs.pop(lb_id, None)
            else:
                self._graphs[lb_id] = entry
        now = self.clock()
        if now - self._pruned > self.ttl:
            self._pruned = now
            self._graphs = {k: v for k, v in self._graphs.items() if now - v[1] <= self.ttl}
            live = {id(v[2]) for v in self._graphs.values()}
            self._quiet = {k: v for k, v in self._quiet.items() if id(v[0]) in live}
            # Another health manager may have written since: write each row again once.
            self._active.clear()
        return result

    def _graphs_for(self, session: Session, lbs: dict[str, Any],
                    cache: dict[str, tuple[tuple[Any, ...], float, LbGraph] | None],
                    ) -> dict[str, LbGraph]:
        now = self.clock()
        graphs: dict[str, LbGraph] = {}
        stale: list[str] = []
        for lb_id, row in lbs.items():
            known = self._graphs.get(lb_id)
            if known is not None and known[0] == _version(row) and now - known[1] <= self.ttl:
                graphs[lb_id] = known[2]
            else:
                stale.append(lb_id)
        fresh = load_graphs(session, sorted(stale))
        self.tree_reads += len(stale)
        for lb_id in stale:
            graph = fresh.get(lb_id)
            if graph is not None:
                graphs[lb_id] = graph
                cache[lb_id] = (_version(lbs[lb_id]), now, graph)
            else:
                cache[lb_id] = None
        return graphs

    def _apply(self, session: Session, batch: Batch,
               cache: dict[str, tuple[tuple[Any, ...], float, LbGraph] | None],
               active: dict[tuple[str, str], int]) -> FlushResult:
        result = FlushResult(heartbeats=batch.heartbeats, amphorae=len(batch.latest))
        Amp, LB = m.Amphora, m.LoadBalancer
        rows = _rows(session, lambda c: sa.select(
            Amp.id, Amp.status, Amp.load_balancer_id, Amp.lb_network_ip, LB.updated_at,
            LB.provisioning_status, LB.operating_status, LB.enabled)
            .select_from(Amp).outerjoin(LB, LB.id == Amp.load_balancer_id)
            .where(Amp.id.in_(c)), sorted(batch.latest))
        amps = {r.id: r for r in rows}
        usable: dict[str, Received] = {}
        for amp_id, rec in batch.latest.items():
            row = amps.get(amp_id)
            if row is None or row.status == A.DELETED:
                result.zombies.append(amp_id)
            elif row.lb_network_ip and row.lb_network_ip != rec.source:
                result.wrong_source.append(amp_id)
            elif row.status in HEALTH_TRACKED:
                usable[amp_id] = rec
            if row is not None and row.lb_network_ip:
                result.sources[amp_id] = row.lb_network_ip
        lbs = {amps[a].load_balancer_id: amps[a] for a in usable
               if amps[a].status in SERVING and amps[a].load_balancer_id
               and amps[a].provisioning_status not in (None, P.DELETED)}
        graphs = self._graphs_for(session, lbs, cache)
        changes = StatusChanges()
        by_lb: dict[str, StatusChanges] = {}
        health_rows: list[dict[str, Any]] = []
        serving: dict[str, LbGraph] = {}
        for amp_id, rec in usable.items():
            row = amps[amp_id]
            graph = graphs.get(row.load_balancer_id or "")
            if row.status in SERVING and graph is not None:
                serving[amp_id] = graph
                hb = rec.heartbeat
                report = (tuple((k, v.status) for k, v in hb.listeners.items()), hb.pools)
                seen = self._quiet.get(amp_id)
                # aggregate() is pure: the same tree and the same report changed nothing
                # last time, so they change nothing now.
                if seen is None or seen[0] is not graph or seen[1] != report:
                    found = aggregate(graph, hb)
                    if found:
                        changes.update(found)
                        by_lb.setdefault(graph.id, StatusChanges()).update(found)
                        self._quiet.pop(amp_id, None)
                    else:
                        self._quiet[amp_id] = (graph, report)
                if not listener_count_matches(graph, rec.heartbeat):
                    result.listener_mismatch.append(amp_id)
                    continue
            health_rows.append({"amphora_id": amp_id,
                                "last_update": as_db_time(rec.received_at), "busy": False,
                                "last_seq": rec.heartbeat.seq})
            if row.status == A.FAILOVER_STOPPED:
                result.recovered.append(amp_id)
        upsert_health(session, health_rows)
        result.refreshed = len(health_rows)
        if result.recovered:
            for chunk in _chunks(sorted(result.recovered)):
                session.execute(sa.update(Amp).where(Amp.id.in_(chunk),
                                                     Amp.status == A.FAILOVER_STOPPED)
                                .values(status=A.ALLOCATED)
                                .execution_options(synchronize_session=False))
        write_statuses(session, changes)
        result.status_changes = len(changes)
        now = self.clock()
        for lb_id, lb_changes in by_lb.items():
            if lb_changes.load_balancers:
                cache[lb_id] = None  # its row's version moves with this write
            else:
                cache[lb_id] = (_version(lbs[lb_id]), now,
                                _with_changes(graphs[lb_id], lb_changes))
        listener_ids = {g.id: {li.id for li in g.listeners} for g in serving.values()}
        stats_rows = []
        for (amp_id, listener_id), counters in batch.stats.items():
            graph = serving.get(amp_id)
            if graph is None or listener_id not in listener_ids[graph.id]:
                continue
            # An idle listener (no traffic, same open connections) needs no write.
            if (not (counters[0] or counters[1] or counters[3] or counters[4])
                    and self._active.get((amp_id, listener_id)) == counters[2]):
                continue
            active[(amp_id, listener_id)] = counters[2]
            stats_rows.append({"listener_id": listener_id, "amphora_id": amp_id,
                               "bytes_in": counters[0], "bytes_out": counters[1],
                               "active_connections": counters[2],
                               "total_connections": counters[3],
                               "request_errors": counters[4]})
        add_statistics(session, stats_rows)
        result.stats_rows = len(stats_rows)
        return result


def _version(lb_row: Any) -> tuple[Any, ...]:
    return (lb_row.updated_at, lb_row.provisioning_status, lb_row.operating_status,
            bool(lb_row.enabled))


def write_batch(db: Database, batch: Batch) -> FlushResult:
    """Write one batch without remembering anything (a fresh store each time)."""
    return HealthStore(db).write(batch)


def health_rows(db: Database, amphora_ids: Iterable[str]) -> dict[str, Any]:
    with db.read() as session:
        return {r.amphora_id: r for r in session.execute(sa.select(
            m.AmphoraHealth.amphora_id, m.AmphoraHealth.last_update, m.AmphoraHealth.busy)
            .where(m.AmphoraHealth.amphora_id.in_(list(amphora_ids)))).all()}
