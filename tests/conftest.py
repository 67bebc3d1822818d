"""Shared fixtures.

``api``: the app on a fresh SQLite database with the noop drivers, a TestClient speaking
noauth as project ``p1``, and ``settle()`` to run every pending operation to its end.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from statera.api.app import create_app
from statera.config import Settings, load_settings
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.drivers import Drivers, load_drivers
from statera.services.deps import Deps
from statera.worker.runner import Worker

PROJECT = "p1"

# Property tests draw the same examples on every run, so a CI verdict never depends on the
# seed; STATERA_HYPOTHESIS=explore draws fresh ones when hunting for new failures.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("STATERA_HYPOTHESIS", "repeatable"))


def _snapshot_host_network() -> tuple[str, str]:
    addrs = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    # Only the host's own links: bridges and veth ends the project makes are st-*, sv*, sb*.
    ours = ("st-", "sv", "sb")
    keep = [line for line in addrs.splitlines()
            if not any(line.split(": ", 1)[-1].startswith(p) for p in ours)]
    keep_routes = [line for line in routes.splitlines()
                   if not any(f"dev {p}" in line for p in ours)]
    return "\n".join(keep), "\n".join(keep_routes)


@pytest.fixture(scope="session", autouse=True)
def host_network_unchanged() -> Iterator[None]:
    """The suite must never change the host's own addresses or routes."""
    before = _snapshot_host_network()
    yield
    after = _snapshot_host_network()
    assert after == before, "the root namespace's addresses or routes changed during the tests"


def make_settings(tmp_path: Path, url: str | None = None, **env: str) -> Settings:
    environ = {"STATERA_DEFAULT__STATE_PATH": str(tmp_path)}
    if url:
        environ["STATERA_DATABASE__CONNECTION"] = url
    environ.update(env)
    return load_settings(environ=environ)


@dataclass
class Api:
    deps: Deps
    drivers: Drivers
    worker: Worker
    client: TestClient
    project: str = PROJECT
    headers: dict[str, str] = field(default_factory=dict)

    def settle(self) -> None:
        """Run every pending operation to completion (ACTIVE, DELETED or ERROR)."""
        self.worker.run_until_idle()

    # Small conveniences for tests of child resources.
    @property
    def subnet_id(self) -> str:
        return self.deps.settings.networks[0].subnet_id

    def post(self, path: str, body: dict[str, Any], status: int = 201, **kw: Any) -> Any:
        r = self.client.post(path, json=body, headers=self.headers, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def put(self, path: str, body: dict[str, Any], status: int = 200, **kw: Any) -> Any:
        r = self.client.put(path, json=body, headers=self.headers, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def get(self, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.client.get(path, headers=self.headers, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def delete(self, path: str, status: int = 204, **kw: Any) -> Any:
        r = self.client.delete(path, headers=self.headers, **kw)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    def make_lb(self, **fields: Any) -> dict[str, Any]:
        body = {"vip_subnet_id": self.subnet_id, "name": f"lb-{uuid.uuid4().hex[:6]}"}
        body.update(fields)
        lb = self.post("/v2/lbaas/loadbalancers", {"loadbalancer": body})["loadbalancer"]
        self.settle()
        return lb


_TEMPLATE: dict[str, Path] = {}
# Set by --db=mariadb|postgresql: every build_api() then runs on that server's database.
_SERVER: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db", default=os.environ.get("STATERA_TEST_DB", "sqlite"),
                     choices=["sqlite", "mariadb", "postgresql"],
                     help="database the `api` fixture (and build_api) runs on")


@pytest.fixture(scope="session", autouse=True)
def _server_database(request: pytest.FixtureRequest) -> Iterator[None]:
    kind = request.config.getoption("--db")
    if kind == "sqlite":
        yield
        return
    gen = server_db(kind)
    url = next(gen)
    upgrade(url)
    _SERVER["url"] = url
    try:
        yield
    finally:
        _SERVER.clear()
        next(gen, None)


def _empty_tables(url: str) -> None:
    from statera.db.models import Base

    db = Database(url, pool_size=1, max_overflow=0)
    try:
        with db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
    finally:
        db.dispose()


def _migrated_sqlite(tmp_path: Path) -> None:
    """Copy a database migrated once per test session: much faster than migrating again."""
    import atexit
    import shutil
    import tempfile

    if "db" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="statera-template-")) / "statera.db"
        upgrade(f"sqlite:///{template}")
        _TEMPLATE["db"] = template
        # One per test process; gone when the process ends.
        atexit.register(shutil.rmtree, template.parent, True)
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE["db"], tmp_path / "statera.db")


def build_api(tmp_path: Path, url: str | None = None, **env: str) -> Api:
    if url is None and "STATERA_DATABASE__CONNECTION" not in env and "url" in _SERVER:
        url = _SERVER["url"]
        _empty_tables(url)
    settings = make_settings(tmp_path, url, **env)
    if url is None and "STATERA_DATABASE__CONNECTION" not in env:
        _migrated_sqlite(tmp_path)
    else:
        upgrade(settings.database_url)
    db = Database(settings.database_url)
    drivers = load_drivers(settings)
    deps = Deps(settings=settings, db=db)
    worker = Worker(deps, drivers, name=f"test-{uuid.uuid4().hex[:6]}")
    client = TestClient(create_app(deps))
    return Api(deps=deps, drivers=drivers, worker=worker, client=client,
               headers={"X-Project-Id": PROJECT})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = build_api(tmp_path)
    yield a
    a.client.close()
    a.deps.db.dispose()


# ---- real database servers ------------------------------------------------------------------

MARIADB_URL = os.environ.get("STATERA_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
POSTGRES_URL = os.environ.get("STATERA_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432")


def server_db(kind: str) -> Iterator[str]:
    """Create a throwaway database on a real server; drop it afterwards."""
    import sqlalchemy as sa

    name = f"statera_test_{uuid.uuid4().hex[:10]}"
    base = MARIADB_URL if kind == "mariadb" else POSTGRES_URL
    admin_url = base + ("/mysql" if kind == "mariadb" else "/postgres")
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{kind} server not reachable at {base}: {exc}")
    try:
        yield f"{base}/{name}"
    finally:
        with engine.connect() as conn:
            if kind == "postgresql":
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    yield from server_db("mariadb")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from server_db("postgresql")


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on all three backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'statera.db'}"
    else:
        yield from server_db(request.param)
