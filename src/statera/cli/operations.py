"""Reading operations for `statera operation list|show`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from statera.config import Settings
from statera.db import models as m
from statera.db.database import Database

_COLUMNS = ("id", "kind", "load_balancer_id", "target_type", "target_id", "project_id", "state",
            "owner", "lease_expires_at", "claim_count", "current_step", "attempts", "error",
            "request_id", "created_at", "updated_at", "finished_at")


def _row(op: m.Operation, full: bool) -> dict[str, Any]:
    out = {c: getattr(op, c) for c in _COLUMNS}
    if full:
        out["payload"] = op.payload
        out["progress"] = op.progress
    return out


def list_operations(settings: Settings, *, state: str | None, loadbalancer: str | None,
                    limit: int) -> list[dict[str, Any]]:
    db = Database(settings.database_url, pool_size=1, max_overflow=0)
    try:
        stmt = sa.select(m.Operation).order_by(m.Operation.created_at.desc()).limit(limit)
        if state:
            stmt = stmt.where(m.Operation.state == state.upper())
        if loadbalancer:
            stmt = stmt.where(m.Operation.load_balancer_id == loadbalancer)
        with db.read() as session:
            return [_row(op, False) for op in session.scalars(stmt)]
    finally:
        db.dispose()


def show_operation(settings: Settings, operation_id: str) -> dict[str, Any] | None:
    db = Database(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with db.read() as session:
            op = session.get(m.Operation, operation_id)
            return _row(op, True) if op is not None else None
    finally:
        db.dispose()
