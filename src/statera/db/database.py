"""The Database object: one engine per process, short transactions, the same behaviour on
SQLite, MariaDB and PostgreSQL.

SQLite runs in WAL mode; a write transaction starts with BEGIN IMMEDIATE so that two writers
queue on the database lock instead of failing when one upgrades a read lock. MariaDB and
PostgreSQL run at READ COMMITTED and take row locks with SELECT ... FOR UPDATE.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from statera.domain.errors import ServiceUnavailable

LOG = logging.getLogger(__name__)
_WRITE = "statera_write"


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    if _is_sqlite(url):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=False)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN is ours to choose.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            if conn.get_execution_options().get(_WRITE):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True,
        pool_recycle=3600, isolation_level="READ COMMITTED")


class Database:
    """Owns the engine and hands out sessions: ``with db.write() as s:`` commits at the end."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.dialect = self.engine.dialect.name
        self._read = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write = sessionmaker(self.engine.execution_options(**{_WRITE: True}),
                                   expire_on_commit=False, autoflush=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        session = self._read()
        try:
            yield session
        except exc.OperationalError as e:
            raise _unavailable(e) from e
        finally:
            # close() ends the transaction without expiring loaded objects (rollback() would),
            # so callers can read what they loaded after the block.
            session.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        session = self._write()
        try:
            yield session
            session.commit()
        except exc.OperationalError as e:
            session.rollback()
            if _is_deadlock(e):
                raise
            raise _unavailable(e) from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def write_retrying(self, fn: Any, *, attempts: int = 8) -> Any:
        """Run ``fn(session)`` in a write transaction, retrying on deadlocks and
        serialization failures, which MariaDB and PostgreSQL report under contention."""
        for attempt in range(attempts):
            try:
                with self.write() as session:
                    return fn(session)
            except exc.OperationalError as e:
                if not _is_deadlock(e) or attempt == attempts - 1:
                    raise _unavailable(e) from e
                time.sleep(random.uniform(0.005, 0.02) * (2**attempt))
            except exc.DBAPIError as e:
                if not _is_deadlock(e) or attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * (2**attempt))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _is_deadlock(e: exc.DBAPIError) -> bool:
    text = str(e.orig).lower() if e.orig is not None else str(e).lower()
    # MariaDB rolls back the whole transaction of a deadlock victim, so a deadlock inside a
    # savepoint surfaces as "SAVEPOINT … does not exist" when SQLAlchemy rolls back to it.
    savepoint_lost = "savepoint" in text and "does not exist" in text
    return ("deadlock" in text or "could not serialize" in text or "lock wait timeout" in text
            or "database is locked" in text or savepoint_lost)


def _unavailable(e: Exception) -> ServiceUnavailable:
    LOG.warning("database unavailable: %s", str(e).splitlines()[0][:300])
    return ServiceUnavailable("The database is unavailable right now; try again shortly.")
