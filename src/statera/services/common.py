"""Shared steps of every change the API accepts: find, lock, mark, count quota, enqueue."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import DELETABLE_STATUSES, PENDING_STATUSES, ProvisioningStatus
from statera.domain.errors import (
    ImmutableObject,
    InvalidInput,
    NotFound,
    ProjectBusy,
    QuotaExceeded,
)
from statera.services import policy
from statera.services.context import RequestContext

if TYPE_CHECKING:
    from statera.services.deps import Deps

T = TypeVar("T", bound=m.Base)

# Names used in messages, as Octavia words them.
DISPLAY = {
    m.LoadBalancer: "Load Balancer",
    m.Listener: "Listener",
    m.Pool: "Pool",
    m.Member: "Member",
    m.HealthMonitor: "Health Monitor",
    m.L7Policy: "L7 Policy",
    m.L7Rule: "L7 Rule",
    m.Amphora: "Amphora",
    m.Flavor: "Flavor",
    m.FlavorProfile: "Flavor profile",
    m.AvailabilityZone: "Availability Zone",
    m.AvailabilityZoneProfile: "Availability Zone profile",
}


def new_id() -> str:
    return str(uuid.uuid4())


def get_or_404(session: Session, model: type[T], obj_id: str, *, for_update: bool = False,
               options: Sequence[Any] = ()) -> T:
    """Load a live object by id; deleted objects are reported as not found (API v2.1+)."""
    stmt = sa.select(model).where(model.id == obj_id)  # type: ignore[attr-defined]
    if options:
        stmt = stmt.options(*options)
    if for_update:
        # Lock the row alone: PostgreSQL refuses FOR UPDATE across the outer joins of eager
        # loads; related rows load lazily afterwards in the same transaction.
        stmt = stmt.options(sa.orm.lazyload("*")).with_for_update()
    obj = session.scalars(stmt).unique().first()
    status = getattr(obj, "provisioning_status", None)
    if obj is None or status == ProvisioningStatus.DELETED:
        raise NotFound(resource=DISPLAY.get(model, model.__name__), id=obj_id)
    return obj


def authorize(ctx: RequestContext, action: str, project_id: str | None) -> None:
    policy.enforce(ctx, action, project_id)


def lock_load_balancer(session: Session, lb_id: str) -> m.LoadBalancer:
    """Take the tree lock: the load balancer row, FOR UPDATE (BEGIN IMMEDIATE on SQLite)."""
    return get_or_404(session, m.LoadBalancer, lb_id, for_update=True)


def require_mutable(lb: m.LoadBalancer, *objs: Any, allow_error: bool = False) -> None:
    """409 unless the tree is settled: the LB ACTIVE, and no given object PENDING_*."""
    allowed = DELETABLE_STATUSES if allow_error else {ProvisioningStatus.ACTIVE}
    if lb.provisioning_status not in allowed:
        raise ImmutableObject(resource="Load Balancer", id=lb.id)
    for obj in objs:
        if obj is not None and obj.provisioning_status in PENDING_STATUSES:
            raise ImmutableObject(resource=DISPLAY.get(type(obj), type(obj).__name__),
                                  id=obj.id)


def mark(status: ProvisioningStatus, *objs: Any) -> None:
    for obj in objs:
        if obj is not None:
            obj.provisioning_status = status


# ---- quotas --------------------------------------------------------------------------------

QUOTA_RESOURCES = ("load_balancer", "listener", "pool", "health_monitor", "member",
                   "l7policy", "l7rule")
QUOTA_MODELS: dict[str, type[m.Base]] = {
    "load_balancer": m.LoadBalancer,
    "listener": m.Listener,
    "pool": m.Pool,
    "health_monitor": m.HealthMonitor,
    "member": m.Member,
    "l7policy": m.L7Policy,
    "l7rule": m.L7Rule,
}


def quota_limits(session: Session, deps: Deps, project_id: str) -> dict[str, int]:
    row = session.get(m.Quotas, project_id)
    limits = {}
    for res in QUOTA_RESOURCES:
        value = getattr(row, res) if row is not None else None
        if value is None:
            value = getattr(deps.settings.quotas, f"default_{res}_quota")
        limits[res] = value
    return limits


def quota_usage(session: Session, project_id: str, resource: str) -> int:
    model: Any = QUOTA_MODELS[resource]
    stmt = sa.select(sa.func.count()).select_from(model).where(
        model.project_id == project_id,
        model.provisioning_status != ProvisioningStatus.DELETED)
    return int(session.scalar(stmt) or 0)


def lock_project_quota(session: Session, project_id: str) -> None:
    """Serialise quota checks of one project: lock (creating if needed) its quotas row."""
    try:
        row = session.scalars(sa.select(m.Quotas).where(m.Quotas.project_id == project_id)
                              .with_for_update()).first()
        if row is None:
            with session.begin_nested():
                session.add(m.Quotas(project_id=project_id))
            session.scalars(sa.select(m.Quotas).where(m.Quotas.project_id == project_id)
                            .with_for_update()).first()
    except sa.exc.IntegrityError:
        # Another request created the row first; lock the one it made.
        session.scalars(sa.select(m.Quotas).where(m.Quotas.project_id == project_id)
                        .with_for_update()).first()
    except sa.exc.OperationalError as exc:
        text = str(exc).lower()
        # A deadlock (or MariaDB's lost savepoint after one) is retried whole by the caller;
        # only a lock we could not get in time is "project busy".
        if "lock wait timeout" in text or "could not obtain lock" in text:
            raise ProjectBusy() from exc
        raise


def check_quota(session: Session, deps: Deps, project_id: str | None,
                wanted: dict[str, int], *, being_created: Sequence[Any] = ()) -> None:
    """403 if adding ``wanted`` objects would take the project over any limit.

    Usage is counted from live rows under the project's quota lock, so concurrent creates see
    each other and the count never drifts. ``being_created``: objects of this request that
    may already be flushed, and so must not be counted twice.
    """
    wanted = {k: v for k, v in wanted.items() if v > 0}
    if not wanted or project_id is None:
        return
    limits = quota_limits(session, deps, project_id)
    if all(limits[res] == -1 for res in wanted):
        return
    lock_project_quota(session, project_id)
    over = []
    for res, count in wanted.items():
        limit = limits[res]
        if limit == -1:
            continue
        model = QUOTA_MODELS[res]
        flushed = sum(1 for obj in being_created
                      if isinstance(obj, model) and sa.inspect(obj).persistent)
        if quota_usage(session, project_id, res) - flushed + count > limit:
            over.append(res)
    if over:
        raise QuotaExceeded(resources=", ".join(sorted(over)))


# ---- operations ----------------------------------------------------------------------------


def enqueue(session: Session, kind: str, *, load_balancer_id: str | None,
            target_type: str | None = None, target_id: str | None = None,
            project_id: str | None = None, payload: dict[str, Any] | None = None,
            request_id: str | None = None) -> m.Operation:
    """Write the operation row in the caller's transaction, next to the PENDING_* marks."""
    op = m.Operation(
        id=new_id(), kind=kind, load_balancer_id=load_balancer_id, target_type=target_type,
        target_id=target_id, project_id=project_id, payload=payload or {}, state="PENDING",
        claim_count=0, attempts=0, request_id=request_id)
    session.add(op)
    return op


# ---- tags ----------------------------------------------------------------------------------


def set_tags(session: Session, resource_id: str, tags: Iterable[str] | None) -> None:
    session.execute(sa.delete(m.Tag).where(m.Tag.resource_id == resource_id))
    for tag in dict.fromkeys(tags or ()):
        session.add(m.Tag(resource_id=resource_id, tag=tag))


def tags_of(session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return out
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start:chunk_start + 500]
        rows = session.execute(sa.select(m.Tag.resource_id, m.Tag.tag)
                               .where(m.Tag.resource_id.in_(chunk))
                               .order_by(m.Tag.resource_id, m.Tag.tag))
        for rid, tag in rows:
            out[rid].append(tag)
    return out


def attach_tags(session: Session, objs: Sequence[Any]) -> None:
    """Load the tags of ``objs`` so presenters can read them after the session closes."""
    found = tags_of(session, [o.id for o in objs])
    for obj in objs:
        obj.__dict__["_tags"] = found[obj.id]


def attached_tags(obj: Any) -> list[str]:
    return list(obj.__dict__.get("_tags", []))


def check_project_id(ctx: RequestContext, body_project_id: str | None) -> str:
    """The project a new object belongs to: the caller's, or another one for admins."""
    if body_project_id is None or body_project_id == ctx.project_id:
        project = ctx.project_id or body_project_id
        if project is None:
            raise InvalidInput("Missing project ID in request where one is required. Send "
                               "X-Project-Id or a project_id in the body.")
        return project
    if not (ctx.noauth or policy.admin(ctx, None)):
        raise policy.PolicyForbidden()
    return body_project_id


def ensure(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInput(message)


# ---- building objects ----------------------------------------------------------------------


class GraphBuild:
    """What one request creates: counts for the quota check, and pools by name so that a
    single-call create can point a listener or L7 policy at a pool listed under ``pools``."""

    def __init__(self, *, single_call: bool) -> None:
        self.single_call = single_call
        self.counts: dict[str, int] = {}
        self.pools_by_name: dict[str, m.Pool] = {}
        self.created: list[Any] = []

    def add(self, resource: str, obj: Any) -> None:
        self.counts[resource] = self.counts.get(resource, 0) + 1
        self.created.append(obj)


def enqueue_child_change(session: Session, ctx: RequestContext, lb: m.LoadBalancer,
                         target_type: str, target_id: str, action: str,
                         payload: dict[str, Any] | None = None) -> m.Operation:
    """Enqueue ``<action>_<target_type>`` (create/update/delete) for a child of ``lb``.

    The caller has already marked the object and its parents PENDING_* in this transaction.
    """
    return enqueue(session, f"{action}_{target_type}", load_balancer_id=lb.id,
                   target_type=target_type, target_id=target_id, project_id=lb.project_id,
                   payload=payload or {}, request_id=ctx.request_id)
