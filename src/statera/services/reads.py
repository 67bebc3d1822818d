"""Reads shared by the resource services: one object with its tags, one filtered page of
the objects the caller may see."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import ProvisioningStatus
from statera.domain.errors import PolicyForbidden
from statera.services import common, listing, policy
from statera.services.context import RequestContext
from statera.services.deps import Deps

T = TypeVar("T", bound=m.Base)


def get_tagged(
    deps: Deps,
    ctx: RequestContext,
    model: type[T],
    obj_id: str,
    action: str,
    *,
    check: bool,
    options: Sequence[Any] = (),
) -> T:
    """A live object with its tags; ``check`` enforces ``action`` on its project."""
    with deps.db.read() as session:
        obj = common.get_or_404(session, model, obj_id, options=options)
        if check:
            common.authorize(ctx, action, obj.project_id)  # type: ignore[attr-defined]
        common.attach_tags(session, [obj])
        return obj


def filtered_page(
    session: Session,
    deps: Deps,
    stmt: Any,
    spec: listing.Listing,
    params: Mapping[str, list[str]],
    base_url: str,
    *,
    options: Sequence[Any] = (),
) -> listing.Page:
    """Apply the client's filters to stmt and return the page it asked for."""
    stmt = listing.apply_filters(stmt, spec, params)
    return listing.paginate(
        session,
        stmt,
        spec,
        params,
        max_limit=deps.settings.api_settings.pagination_max_limit,
        base_url=base_url,
        options=options,
    )


def scope_to_project(stmt: Any, ctx: RequestContext, resource: str, column: Any,
                     params: Mapping[str, list[str]]) -> Any:
    """Non-global readers see their own project only, whatever they filter on."""
    if policy.sees_all_projects(ctx, resource):
        return stmt
    wanted = params.get("project_id") or params.get("tenant_id")
    if wanted and any(p != ctx.project_id for p in wanted):
        raise PolicyForbidden()
    return stmt.where(column == ctx.project_id)


def list_live(
    deps: Deps,
    ctx: RequestContext,
    model: Any,
    resource: str,
    spec: listing.Listing,
    params: Mapping[str, list[str]],
    base_url: str,
    *,
    options: Sequence[Any] = (),
    attach: Callable[[Session, Sequence[Any]], None] = common.attach_tags,
) -> listing.Page:
    """A page of ``model``'s live objects the caller may list (``<resource>:get_all``),
    filtered as asked, with what the presenter reads attached by ``attach``."""
    common.authorize(ctx, f"{resource}:get_all", ctx.project_id)
    with deps.db.read() as session:
        stmt = sa.select(model).where(model.provisioning_status != ProvisioningStatus.DELETED)
        stmt = scope_to_project(stmt, ctx, resource, model.project_id, params)
        page = filtered_page(session, deps, stmt, spec, params, base_url, options=options)
        attach(session, page.items)
        return page
