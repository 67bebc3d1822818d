"""A real health manager (UDP on 127.0.0.1, a free port) over a real database, and the
pieces to build load balancers and signed heartbeats for it."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from statera.config.settings import HealthManagerSection
from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.health.manager import HealthManager, HealthManagerThread
from statera.wire import heartbeat as wire

MASTER = b"integration-master-key-0123456789"


@dataclass
class Clock:
    """Wall time plus an offset the test moves forward."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Tree:
    lb: str
    listener: str
    pool: str
    members: list[str]
    amphora: str


@dataclass
class Amphora:
    """Signs heartbeats as one amphora would."""

    id: str
    clock: Clock
    mode: str = wire.PER_AMPHORA
    seq: int = 0
    key: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if not self.key:
            self.key = (wire.derive_amphora_key(MASTER, self.id)
                        if self.mode == wire.PER_AMPHORA else MASTER)

    def message(self, tree: Tree | None, *, listener: str = "OPEN", pool: str = "UP",
                members: dict[str, str] | None = None, rx: int = 0, tx: int = 0,
                conns: int = 0, seq: int | None = None) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        msg: dict[str, Any] = {"id": self.id, "seq": seq, "ver": 3, "t": self.clock(),
                               "listeners": {}, "pools": {}}
        if tree is not None:
            msg["listeners"][tree.listener] = {"status": listener, "stats": {
                "rx": rx, "tx": tx, "conns": conns, "totconns": 1 if rx else 0, "ereq": 0}}
            msg["pools"][f"{tree.pool}:{tree.listener}"] = {
                "status": pool,
                "members": members if members is not None else dict.fromkeys(tree.members,
                                                                             "UP")}
        return msg

    def packet(self, tree: Tree | None, **kw: Any) -> bytes:
        return wire.encode(self.message(tree, **kw), self.key, self.mode)


def add_tree(db: Database, *, members: int = 2, lb_network_ip: str = "127.0.0.1",
             amphora_status: str = "ALLOCATED") -> Tree:
    ids = {k: str(uuid.uuid4()) for k in ("lb", "listener", "pool", "amphora")}
    member_ids = [str(uuid.uuid4()) for _ in range(members)]
    with db.write() as s:
        s.add(m.LoadBalancer(id=ids["lb"], project_id="p1", provisioning_status="ACTIVE",
                             operating_status="OFFLINE", enabled=True, topology="SINGLE",
                             provider="amphora"))
        s.flush()
        s.add(m.Pool(id=ids["pool"], project_id="p1", load_balancer_id=ids["lb"],
                     protocol="HTTP", lb_algorithm="ROUND_ROBIN", provisioning_status="ACTIVE",
                     operating_status="OFFLINE", enabled=True))
        s.flush()
        s.add(m.Listener(id=ids["listener"], project_id="p1", load_balancer_id=ids["lb"],
                         protocol="HTTP", protocol_port=80, provisioning_status="ACTIVE",
                         operating_status="OFFLINE", enabled=True,
                         default_pool_id=ids["pool"]))
        for i, mid in enumerate(member_ids):
            s.add(m.Member(id=mid, project_id="p1", pool_id=ids["pool"],
                           ip_address=f"192.0.2.{i + 10}", protocol_port=80,
                           provisioning_status="ACTIVE", operating_status="NO_MONITOR",
                           enabled=True))
        s.add(m.Amphora(id=ids["amphora"], status=amphora_status, load_balancer_id=ids["lb"],
                        lb_network_ip=lb_network_ip, role="STANDALONE",
                        compute_id=ids["amphora"]))
    return Tree(ids["lb"], ids["listener"], ids["pool"], member_ids, ids["amphora"])


def hm_conf(**over: Any) -> HealthManagerSection:
    conf = HealthManagerSection()
    conf.heartbeat_interval = 1
    conf.heartbeat_timeout = 3.0
    conf.health_check_interval = 3600.0  # tests judge by calling check_stale()
    conf.stats_update_interval = 0.05
    conf.replay_window = 5.0
    conf.failover_threshold = 10
    for k, v in over.items():
        setattr(conf, k, v)
    return conf


@dataclass
class Running:
    manager: HealthManager
    port: int
    clock: Clock
    db: Database
    _sockets: dict[str, socket.socket] = field(default_factory=dict)

    def send(self, packet: bytes, source: str = "127.0.0.1") -> None:
        sock = self._sockets.get(source)
        if sock is None:
            sock = self._sockets[source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((source, 0))
        sock.sendto(packet, ("127.0.0.1", self.port))

    def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.02)

    def wait_written(self, count: int, timeout: float = 15.0) -> None:
        """Until ``count`` heartbeats in all were accepted and written to the database."""
        self.wait(lambda: self.manager.heartbeats_written >= count, timeout)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    upgrade(db_url)
    db = Database(db_url, pool_size=4, max_overflow=4)
    yield db
    db.dispose()


@pytest.fixture
def start_hm() -> Iterator[Callable[..., Running]]:
    """start_hm(db, mode=per_amphora, wake=None, **conf) -> Running; stopped afterwards."""
    runners: list[tuple[HealthManagerThread, Running]] = []

    def start(db: Database, mode: str = wire.PER_AMPHORA,
              wake: Callable[[], None] | None = None, **over: Any) -> Running:
        clock = Clock()
        conf = hm_conf(heartbeat_mode=mode, **over)
        manager = HealthManager(conf, db, MASTER, bind=("127.0.0.1", 0), clock=clock,
                                wake_worker=wake or (lambda: None))
        thread = HealthManagerThread(manager)
        thread.start()
        assert manager.bound is not None
        running = Running(manager, int(manager.bound[1]), clock, db)
        runners.append((thread, running))
        return running

    yield start
    for thread, running in runners:
        with contextlib.suppress(Exception):
            thread.stop()
        running.close()
