"""Wiring: build the objects each process needs from Settings. The only place that does."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

from statera.config import Settings
from statera.db.database import Database
from statera.db.migrate import head_revision, is_current, upgrade
from statera.domain.errors import ConfigError
from statera.drivers import Drivers, load_drivers
from statera.services.deps import Deps
from statera.worker.runner import Worker

LOG = logging.getLogger("statera")


@dataclass
class Wired:
    settings: Settings
    db: Database
    deps: Deps
    drivers: Drivers


def wire(settings: Settings, *, migrate: bool) -> Wired:
    url = settings.database_url
    if migrate:
        upgrade(url)
    elif not is_current(url):
        raise ConfigError(f"The database schema is not at revision {head_revision()}: run "
                          "'statera db upgrade' first.")
    db = Database(url, pool_size=settings.database.pool_size,
                  max_overflow=settings.database.max_overflow)
    deps = Deps(settings=settings, db=db)
    return Wired(settings=settings, db=db, deps=deps, drivers=load_drivers(settings))


def start_worker(w: Wired) -> Worker:
    worker = Worker(w.deps, w.drivers)
    w.deps.wake_worker = worker.wake
    worker.start()
    return worker


def on_signals(handler: Callable[[int], None]) -> None:
    """Call ``handler(signum)`` on SIGTERM and SIGINT (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: handler(signum))
