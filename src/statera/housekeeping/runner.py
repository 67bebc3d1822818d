"""Run the housekeeping tasks on their intervals, each in a daemon thread of its own, until
stopped. A failing pass is logged and retried at the next interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from statera.config.settings import Settings
from statera.db.database import Database
from statera.db.types import utcnow
from statera.drivers import Drivers
from statera.housekeeping.certs import rotate_expiring
from statera.housekeeping.purge import purge_expired
from statera.housekeeping.spares import fill_spare_pool
from statera.housekeeping.sweep import sweep

LOG = logging.getLogger(__name__)


class Housekeeper:
    def __init__(self, db: Database, drivers: Drivers, settings: Settings) -> None:
        self.db = db
        self.drivers = drivers
        self.settings = settings
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def cleanup_pass(self) -> None:
        hk = self.settings.house_keeping
        purged = purge_expired(self.db, hk, utcnow())
        if purged.amphorae or purged.load_balancers or purged.operations:
            LOG.info("purged %d amphorae, %d load balancers, %d operations",
                     purged.amphorae, purged.load_balancers, purged.operations)
        sweep(self.db, self.drivers, hk, utcnow())

    def cert_pass(self) -> None:
        rotate_expiring(self.db, self.drivers, self.settings.house_keeping, utcnow())

    def spare_pass(self) -> None:
        fill_spare_pool(self.db, self.drivers, self.settings)

    def tasks(self) -> list[tuple[str, float, Callable[[], None]]]:
        hk = self.settings.house_keeping
        out = [("cleanup", hk.cleanup_interval, self.cleanup_pass),
               ("certificates", hk.cert_interval, self.cert_pass)]
        if hk.spare_amphora_pool_size:
            out.append(("spares", hk.spare_check_interval, self.spare_pass))
        return out

    def start(self) -> None:
        for name, interval, task in self.tasks():
            t = threading.Thread(target=self._loop, args=(name, interval, task),
                                 name=f"housekeeping-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _loop(self, name: str, interval: float, task: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                task()
            except Exception:
                LOG.exception("housekeeping %s pass failed", name)
            self._stop.wait(interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
