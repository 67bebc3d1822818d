"""CP-9: 20 parallel load balancer creates against a quota of 10, on SQLite, MariaDB and
PostgreSQL.

Pass: exactly 10 get 201 and the other 10 get 403 (nothing else); usage stays exact: 10 live
load balancers that all become ACTIVE, and after one is deleted exactly one more fits.

Two ways to the limit, both racing on the quota lock: the configured default (the project
has no quota row yet, so the racing requests also race to create it) and a per-project limit
set with PUT /v2/lbaas/quotas/{project} (the row exists).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from tests.integration.reliability.conftest import (
    Cluster,
    ServerClusters,
    burst,
    cluster_on,
    database_url,
    wait_for,
)

LIMIT = int(ServerClusters.ENV["STATERA_QUOTAS__DEFAULT_LOAD_BALANCER_QUOTA"])
CREATES = 20

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", [pytest.param("mariadb", marks=pytest.mark.mariadb),
                                  pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_deadlock_inside_a_savepoint_is_retried(kind: str, tmp_path: Path) -> None:
    """What breaks the races above on MariaDB, made deterministic: a deadlock hits a
    statement inside ``session.begin_nested()`` (as VIP address allocation and the quota
    lock use). MariaDB rolls the whole transaction back, so the ROLLBACK TO SAVEPOINT that
    follows fails with 1305 "SAVEPOINT ... does not exist"; that error must still count as
    a deadlock and be retried, not answered with 503."""
    with database_url(kind, tmp_path) as url:
        upgrade(url)
        db = Database(url, pool_size=4, max_overflow=0)
        try:
            quota = m.Quotas
            with db.write() as s:
                s.add_all([quota(project_id=p) for p in ["a", "b"] + [f"h{i}" for i in range(20)]])
            heavy_has_a, light_has_b = threading.Event(), threading.Event()

            def heavy() -> None:
                # The other transaction must be the deadlock's victim. InnoDB picks the one
                # with fewer locked rows; PostgreSQL the one whose deadlock_timeout runs out
                # first.
                with db.write() as s:
                    if kind == "postgresql":
                        s.execute(sa.text("SET LOCAL deadlock_timeout = '20s'"))
                    s.execute(sa.update(quota).where(quota.project_id.like("h%"))
                              .values(load_balancer=1))
                    s.execute(sa.update(quota).where(quota.project_id == "a")
                              .values(load_balancer=1))
                    heavy_has_a.set()
                    light_has_b.wait(10)
                    s.execute(sa.update(quota).where(quota.project_id == "b")
                              .values(load_balancer=1))

            attempts: list[int] = []

            def light(s: Session) -> str:
                attempts.append(1)
                s.execute(sa.update(quota).where(quota.project_id == "b").values(listener=2))
                if len(attempts) == 1:
                    light_has_b.set()
                    with s.begin_nested():
                        s.execute(sa.update(quota).where(quota.project_id == "a")
                                  .values(listener=2))
                return "done"

            t = threading.Thread(target=heavy, daemon=True)
            t.start()
            assert heavy_has_a.wait(10)
            try:
                assert db.write_retrying(light) == "done"
            finally:
                light_has_b.set()
                t.join(15)
            assert len(attempts) == 2
        finally:
            db.dispose()


@pytest.fixture(scope="module", params=[
    "sqlite",
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            server_clusters: ServerClusters) -> Iterator[Cluster]:
    """API (default load balancer quota 10) and one worker: on SQLite this file's own, on
    the servers the ones CP-8 uses too."""
    if request.param != "sqlite":
        yield server_clusters.get(request.param)
        return
    with cluster_on("sqlite", tmp_path_factory.mktemp("cp9-sqlite"),
                    **ServerClusters.ENV) as c:
        api, worker = c.start_api(), c.start_worker()
        c.wait_api(api)
        c.wait_worker(worker)
        yield c


def _live(c: Cluster, project: str) -> list[dict[str, object]]:
    r = c.client.get("/v2/lbaas/loadbalancers", params={"project_id": project},
                     headers={"X-Project-Id": project})
    assert r.status_code == 200, r.text
    return list(r.json()["loadbalancers"])


def _race(c: Cluster, project: str, n: int, tag: str) -> tuple[list[str], int]:
    """``n`` creates at once; returns (ids created, number refused with 403)."""
    subnet = c.subnet_id()
    responses = burst(n, lambda i: c.create_lb(
        {"loadbalancer": {"vip_subnet_id": subnet, "name": f"{tag}-{i}"}}, project=project))
    unexpected = [(r.status_code, r.text[:300]) for r in responses
                  if r.status_code not in (201, 403)]
    assert not unexpected, f"answers other than 201 and 403: {unexpected}"
    for r in responses:
        if r.status_code == 403:
            assert "quota" in r.text.lower(), r.text
    created = [r.json()["loadbalancer"]["id"] for r in responses if r.status_code == 201]
    return created, sum(r.status_code == 403 for r in responses)


def _check_exact_usage(c: Cluster, project: str) -> None:
    created, refused = _race(c, project, CREATES, "cp9")
    print(f"CP-9: {len(created)} created, {refused} refused")
    assert (len(created), refused) == (LIMIT, CREATES - LIMIT)
    wait_for("the created load balancers to settle", lambda: c.settled(created), timeout=30,
             interval=0.2)
    live = _live(c, project)
    assert sorted(lb["id"] for lb in live) == sorted(created)  # type: ignore[type-var]
    assert all(lb["provisioning_status"] == "ACTIVE" for lb in live)

    # Usage follows deletes exactly: free one slot, race for it, one gets it.
    gone = created[0]
    r = c.client.delete(f"/v2/lbaas/loadbalancers/{gone}", headers={"X-Project-Id": project})
    assert r.status_code == 204, r.text
    wait_for("the deleted load balancer to go", lambda: c.settled([gone]) and c.load_balancers(
        [gone])[gone].provisioning_status == "DELETED", timeout=30, interval=0.2)
    again, refused = _race(c, project, 2, "cp9-again")
    assert (len(again), refused) == (1, 1)
    assert len(_live(c, project)) == LIMIT


def test_default_quota_race(cluster: Cluster) -> None:
    project = f"cp9d-{uuid.uuid4().hex[:8]}"
    _check_exact_usage(cluster, project)


def test_project_quota_race(cluster: Cluster) -> None:
    project = f"cp9p-{uuid.uuid4().hex[:8]}"
    r = cluster.client.put(f"/v2/lbaas/quotas/{project}", json={"quota": {"loadbalancer": LIMIT}})
    assert r.status_code in (200, 202), r.text
    assert r.json()["quota"]["load_balancer"] == LIMIT
    _check_exact_usage(cluster, project)
