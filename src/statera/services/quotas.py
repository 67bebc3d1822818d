"""Quotas: per-project limits over the configured defaults.

Only limits are stored; usage is always counted from live rows (``common.quota_usage``), so
there are no counters to drift. A NULL column means "the configured default", whether an
operator reset it or ``common.lock_project_quota`` made the row only to lock it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.errors import InvalidInput, PolicyForbidden
from statera.services import common, policy
from statera.services.common import QUOTA_RESOURCES, authorize
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import CONTROL_PARAMS


def defaults(deps: Deps) -> dict[str, int]:
    return {res: getattr(deps.settings.quotas, f"default_{res}_quota") for res in QUOTA_RESOURCES}


def _effective(row: m.Quotas | None, fallback: dict[str, int]) -> dict[str, int]:
    out = dict(fallback)
    if row is not None:
        for res in QUOTA_RESOURCES:
            value = getattr(row, res)
            if value is not None:
                out[res] = value
    return out


def get_defaults(deps: Deps, ctx: RequestContext) -> dict[str, int]:
    authorize(ctx, "quota:get_defaults", ctx.project_id)
    return defaults(deps)


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]]
) -> list[tuple[str, dict[str, int]]]:
    """(project_id, effective limits) of every project with a quotas row, visible to ctx."""
    for key in params:
        if key not in CONTROL_PARAMS and key not in ("project_id", "tenant_id"):
            raise InvalidInput(f"Invalid filter argument: {key}")
    wanted = params.get("project_id") or params.get("tenant_id")
    if not policy.allowed(ctx, "quota:get_all-global"):
        # Not a global reader: the caller's own project, and only that.
        if wanted and any(p != ctx.project_id for p in wanted):
            raise PolicyForbidden()
        if ctx.project_id is None:
            raise PolicyForbidden()
        authorize(ctx, "quota:get_all", ctx.project_id)
        wanted = [ctx.project_id]
    stmt = sa.select(m.Quotas).order_by(m.Quotas.project_id)
    if wanted:
        stmt = stmt.where(m.Quotas.project_id.in_(wanted))
    base = defaults(deps)
    with deps.db.read() as session:
        return [(row.project_id, _effective(row, base)) for row in session.scalars(stmt)]


def get(deps: Deps, ctx: RequestContext, project_id: str) -> dict[str, int]:
    authorize(ctx, "quota:get_one", project_id)
    with deps.db.read() as session:
        return common.quota_limits(session, deps, project_id)


def update(
    deps: Deps, ctx: RequestContext, project_id: str, changes: dict[str, int | None]
) -> dict[str, int]:
    """Set some limits of a project; None puts one back to the default."""
    authorize(ctx, "quota:put", project_id)
    unknown = set(changes) - set(QUOTA_RESOURCES)
    if unknown:
        raise InvalidInput(f"Unknown quota resources: {', '.join(sorted(unknown))}")

    def work(session: Session) -> dict[str, int]:
        common.lock_project_quota(session, project_id)
        row = session.get(m.Quotas, project_id)
        assert row is not None  # made by lock_project_quota
        for res, value in changes.items():
            setattr(row, res, value)
        session.flush()
        return _effective(row, defaults(deps))

    result: dict[str, int] = deps.db.write_retrying(work)
    return result


def reset(deps: Deps, ctx: RequestContext, project_id: str) -> None:
    """Put every limit of a project back to the configured default."""
    authorize(ctx, "quota:delete", project_id)

    def work(session: Session) -> None:
        # The row stays: it is also the lock that serialises the project's quota checks.
        session.execute(
            sa.update(m.Quotas)
            .where(m.Quotas.project_id == project_id)
            .values({res: None for res in QUOTA_RESOURCES})
        )

    deps.db.write_retrying(work)
