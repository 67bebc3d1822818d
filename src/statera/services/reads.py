"""Reads shared by the resource services: one object with its tags, one filtered page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from statera.db import models as m
from statera.services import common, listing
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
