"""Lists as Octavia serves them: filters on any attribute, tag filters, sorting, keyset
pagination with a marker, and links to the next and previous pages.

A resource describes itself with a ``Listing``: its model and, for each API attribute that
can be filtered or sorted on, the column behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.errors import InvalidInput

# Query parameters that are never attribute filters.
CONTROL_PARAMS = frozenset({"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir",
                            "fields", "tags", "tags-any", "not-tags", "not-tags-any",
                            "cascade"})
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass
class Listing:
    model: Any
    # API attribute -> column (or column expression) usable in WHERE / ORDER BY.
    columns: Mapping[str, Any]
    # API attributes that are accepted as filters but handled by a custom function.
    custom_filters: Mapping[str, Callable[[Any, str], Any]] = field(default_factory=dict)
    # Joins needed by some columns (e.g. the VIP table).
    joins: Sequence[Any] = ()
    taggable: bool = True
    default_sort: Sequence[tuple[str, str]] = (("created_at", "asc"), ("id", "asc"))


@dataclass
class Page:
    items: list[Any]
    links: list[dict[str, str]]


def _coerce(col: Any, raw: str, attr: str) -> Any:
    try:
        ptype = col.type.python_type
    except (NotImplementedError, AttributeError):
        return raw
    if ptype is bool:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InvalidInput(f"Invalid input for field/attribute {attr}. Value: '{raw}'. "
                           "Expected a boolean.")
    if ptype is int:
        try:
            return int(raw)
        except ValueError:
            raise InvalidInput(f"Invalid input for field/attribute {attr}. Value: '{raw}'. "
                               "Expected an integer.") from None
    if ptype is float:
        try:
            return float(raw)
        except ValueError:
            raise InvalidInput(f"Invalid input for field/attribute {attr}. Value: '{raw}'. "
                               "Expected a number.") from None
    return raw


def _split(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(x for x in v.split(",") if x)
    return out


def parse_sort(listing: Listing, params: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    if "sort" in params:
        for item in _split(params["sort"]):
            key, _, direction = item.partition(":")
            keys.append((key.strip(), (direction or "asc").strip().lower()))
    elif "sort_key" in params:
        sort_keys = params["sort_key"]
        sort_dirs = params.get("sort_dir", [])
        if sort_dirs and len(sort_dirs) != len(sort_keys):
            raise InvalidInput("The number of sort_key and sort_dir parameters must match.")
        for i, key in enumerate(sort_keys):
            keys.append((key, (sort_dirs[i] if sort_dirs else "asc").lower()))
    elif "sort_dir" in params:
        direction = params["sort_dir"][0].lower()
        keys = [(k, direction) for k, _ in listing.default_sort]
    else:
        keys = list(listing.default_sort)
    for key, direction in keys:
        if key not in listing.columns:
            raise InvalidInput(f"Invalid sort key: {key!r}.")
        if direction not in ("asc", "desc"):
            raise InvalidInput(f"Invalid sort direction: {direction!r}; use asc or desc.")
    if not any(k == "id" for k, _ in keys) and "id" in listing.columns:
        keys.append(("id", keys[-1][1] if keys else "asc"))
    return keys


def apply_filters(stmt: Any, listing: Listing, params: Mapping[str, list[str]]) -> Any:
    for attr, values in params.items():
        if attr in CONTROL_PARAMS:
            continue
        if attr in listing.custom_filters:
            stmt = stmt.where(sa.or_(*(listing.custom_filters[attr](stmt, v) for v in values)))
            continue
        col = listing.columns.get(attr)
        if col is None:
            raise InvalidInput(f"Invalid filter argument: {attr}")
        coerced = [_coerce(col, v, attr) for v in values]
        stmt = stmt.where(col == coerced[0]) if len(coerced) == 1 else stmt.where(
            col.in_(coerced))
    if listing.taggable:
        stmt = _tag_filters(stmt, listing.model, params)
    return stmt


def _tag_filters(stmt: Any, model: Any, params: Mapping[str, list[str]]) -> Any:
    def has(tag: str) -> Any:
        return sa.exists().where(m.Tag.resource_id == model.id, m.Tag.tag == tag)

    if "tags" in params:
        for tag in _split(params["tags"]):
            stmt = stmt.where(has(tag))
    if "tags-any" in params:
        tags = _split(params["tags-any"])
        if tags:
            stmt = stmt.where(sa.or_(*(has(t) for t in tags)))
    if "not-tags" in params:
        tags = _split(params["not-tags"])
        if tags:
            stmt = stmt.where(sa.not_(sa.and_(*(has(t) for t in tags))))
    if "not-tags-any" in params:
        tags = _split(params["not-tags-any"])
        if tags:
            stmt = stmt.where(sa.not_(sa.or_(*(has(t) for t in tags))))
    return stmt


def _marker_clause(listing: Listing, sort: list[tuple[str, str]], marker_row: Any,
                   reverse: bool) -> Any:
    """Rows strictly after the marker in sort order (before it when paging in reverse)."""
    ors = []
    for i, (key, direction) in enumerate(sort):
        col = listing.columns[key]
        value = marker_row[i]
        forward = (direction == "asc") != reverse
        eqs = [listing.columns[k] == marker_row[j] for j, (k, _) in enumerate(sort[:i])]
        if value is None:
            # NULLs sort first ascending: after a NULL marker come non-NULLs (ascending).
            cmp = col.is_not(None) if forward else sa.false()
        else:
            cmp = col > value if forward else col < value
            if not forward:
                cmp = sa.or_(cmp, col.is_(None))
        ors.append(sa.and_(*eqs, cmp))
    return sa.or_(*ors)


def _order(listing: Listing, sort: list[tuple[str, str]], reverse: bool) -> list[Any]:
    order = []
    for key, direction in sort:
        col = listing.columns[key]
        asc = (direction == "asc") != reverse
        # Portable NULL ordering: NULLs first when ascending.
        order.append(sa.case((col.is_(None), 0), else_=1).asc() if asc
                     else sa.case((col.is_(None), 0), else_=1).desc())
        order.append(col.asc() if asc else col.desc())
    return order


def paginate(session: Session, stmt: Any, listing: Listing, params: Mapping[str, list[str]],
             *, max_limit: int, base_url: str, options: Sequence[Any] = ()) -> Page:
    """Run a filtered statement with sorting and keyset pagination."""
    sort = parse_sort(listing, params)
    limit: int | None = None
    if "limit" in params:
        raw = params["limit"][0]
        if raw.lower() in ("infinite", "none", ""):
            limit = None
        else:
            try:
                limit = int(raw)
            except ValueError:
                raise InvalidInput(f"Invalid limit: {raw!r}.") from None
            if limit < 1:
                limit = None
    limit = max_limit if limit is None or limit > max_limit else limit
    reverse = params.get("page_reverse", ["false"])[0].lower() in _TRUE
    marker = params.get("marker", [None])[0]
    for join in listing.joins:
        stmt = stmt.outerjoin(*join) if isinstance(join, tuple) else stmt.outerjoin(join)
    if marker:
        cols = [listing.columns[k] for k, _ in sort]
        mstmt = sa.select(*cols).select_from(listing.model)
        for join in listing.joins:
            mstmt = mstmt.outerjoin(*join) if isinstance(join, tuple) else mstmt.outerjoin(join)
        marker_row = session.execute(mstmt.where(listing.model.id == marker)).first()
        if marker_row is None:
            raise InvalidInput(f"Invalid marker: no object with id {marker!r}.")
        stmt = stmt.where(_marker_clause(listing, sort, marker_row, reverse))
    stmt = stmt.order_by(*_order(listing, sort, reverse)).limit(limit + 1)
    if options:
        stmt = stmt.options(*options)
    rows = list(session.scalars(stmt).unique())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if reverse:
        rows.reverse()
    links = _links(base_url, params, rows, limit, has_more, reverse, marker is not None,
                   explicit_limit="limit" in params)
    return Page(items=rows, links=links)


def _links(base_url: str, params: Mapping[str, list[str]], rows: list[Any], limit: int,
           has_more: bool, reverse: bool, had_marker: bool, explicit_limit: bool) -> list[
               dict[str, str]]:
    if not rows or not explicit_limit:
        return []
    keep = [(k, v) for k, vs in params.items() if k not in ("limit", "marker", "page_reverse")
            for v in vs]
    from urllib.parse import urlencode

    def href(marker: str, rev: bool) -> str:
        query = [("limit", str(limit)), ("marker", marker), *keep]
        if rev:
            query.append(("page_reverse", "True"))
        return f"{base_url}?{urlencode(query)}"

    links = []
    more_forward = has_more if not reverse else had_marker
    more_backward = had_marker if not reverse else has_more
    if more_forward:
        links.append({"href": href(rows[-1].id, False), "rel": "next"})
    if more_backward:
        links.append({"href": href(rows[0].id, True), "rel": "previous"})
    return links


def select_fields(obj: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    if not fields:
        return obj
    return {k: v for k, v in obj.items() if k in fields}


def parse_fields(params: Mapping[str, list[str]]) -> list[str] | None:
    if "fields" not in params:
        return None
    return _split(params["fields"]) or None


def fmt_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value is not None else None
