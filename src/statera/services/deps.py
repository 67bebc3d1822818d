"""What every service function needs, passed down from the process that wires things."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from statera.config import Settings
from statera.db.database import Database
from statera.services.networks import NetworkCatalog


def _nothing() -> None:
    return None


@dataclass
class Deps:
    settings: Settings
    db: Database
    # Called after an operation row commits; `statera up` wakes its in-process worker with it.
    wake_worker: Callable[[], None] = field(default=_nothing)
    networks: NetworkCatalog = field(init=False)

    def __post_init__(self) -> None:
        self.networks = NetworkCatalog(self.settings)
