"""Pools: build (also for single-call creates), read, list, update and delete.

What a pool may be is checked in ``pool_rules``; this module adds, finds and changes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import OperatingStatus, ProvisioningStatus
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import common, listing, pool_rules, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import tags

# ---- building --------------------------------------------------------------------------------


def planned_counts(data: dict[str, Any]) -> dict[str, int]:
    """What ``build_pool`` adds for ``data`` (single-call form), for a quota check made before
    building: afterwards the new rows would count themselves."""
    members = data.get("members")
    return {
        "pool": 1,
        "member": len(members) if isinstance(members, list) else 0,
        "health_monitor": int(data.get("healthmonitor") is not None),
    }


def build_pool(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    data: dict[str, Any],
    *,
    listener: m.Listener | None,
    graph: GraphBuild,
) -> m.Pool:
    """Check ``data`` and add a pool (PENDING_CREATE) to ``lb``; in a single-call create also
    its health monitor and members. The caller locks, checks quota and enqueues."""
    from statera.services import healthmonitors, members

    columns = pool_rules.check_new_pool(deps, data, listener, single_call=graph.single_call)
    pool_rules.check_secret_refs(session, deps, lb.project_id, columns)
    sp, pool_tags = columns.pop("session_persistence"), columns.pop("tags")
    pool = m.Pool(
        id=new_id(),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
        **columns,
    )
    pool_rules.apply_tls_defaults(deps.settings.api_settings, pool)
    if sp is not None:
        pool.session_persistence = m.SessionPersistence(pool_id=pool.id, **sp)
    session.add(pool)
    graph.add("pool", pool)
    if pool.name:
        graph.pools_by_name[pool.name] = pool
    session.flush()
    common.set_tags(session, pool.id, pool_tags)
    if listener is not None:
        listener.default_pool_id = pool.id
    if graph.single_call:
        if data.get("healthmonitor") is not None:
            healthmonitors.build_health_monitor(
                session, deps, pool, data["healthmonitor"], graph=graph
            )
        for member_data in data.get("members") or []:
            members.build_member(session, deps, pool, member_data, graph=graph)
    return pool


# ---- reading ---------------------------------------------------------------------------------


def _by_listener(_stmt: Any, listener_id: str) -> Any:
    return sa.or_(
        m.Pool.id.in_(sa.select(m.Listener.default_pool_id).where(m.Listener.id == listener_id)),
        m.Pool.id.in_(
            sa.select(m.L7Policy.redirect_pool_id).where(m.L7Policy.listener_id == listener_id)
        ),
    )


def _by_health_monitor(_stmt: Any, hm_id: str) -> Any:
    return m.Pool.id.in_(sa.select(m.HealthMonitor.pool_id).where(m.HealthMonitor.id == hm_id))


LISTING = listing.Listing(
    model=m.Pool,
    columns={
        "id": m.Pool.id,
        "name": m.Pool.name,
        "description": m.Pool.description,
        "provisioning_status": m.Pool.provisioning_status,
        "operating_status": m.Pool.operating_status,
        "admin_state_up": m.Pool.enabled,
        "project_id": m.Pool.project_id,
        "tenant_id": m.Pool.project_id,
        "created_at": m.Pool.created_at,
        "updated_at": m.Pool.updated_at,
        "protocol": m.Pool.protocol,
        "lb_algorithm": m.Pool.lb_algorithm,
        "loadbalancer_id": m.Pool.load_balancer_id,
        "tls_enabled": m.Pool.tls_enabled,
        "tls_container_ref": m.Pool.tls_certificate_id,
        "ca_tls_container_ref": m.Pool.ca_tls_certificate_id,
        "crl_container_ref": m.Pool.crl_container_id,
        "tls_ciphers": m.Pool.tls_ciphers,
    },
    custom_filters={"listener_id": _by_listener, "healthmonitor_id": _by_health_monitor},
)

# What presenting a pool reads; loaded up front because sessions close early.
LOAD = (
    selectinload(m.Pool.members).load_only(m.Member.id),
    selectinload(m.Pool.health_monitor).load_only(m.HealthMonitor.id),
)


def attach(session: Session, pools: Sequence[m.Pool]) -> None:
    """Load tags and the ids of the listeners using each pool (as default pool or through an
    L7 redirect) so presenters can read them after the session closes."""
    common.attach_tags(session, pools)
    found: dict[str, list[str]] = {p.id: [] for p in pools}
    if found:
        ids = list(found)
        rows = list(
            session.execute(
                sa.select(m.Listener.default_pool_id, m.Listener.id)
                .where(m.Listener.default_pool_id.in_(ids))
                .order_by(m.Listener.created_at, m.Listener.id)
            )
        )
        rows += list(
            session.execute(
                sa.select(m.L7Policy.redirect_pool_id, m.L7Policy.listener_id)
                .where(m.L7Policy.redirect_pool_id.in_(ids))
                .order_by(m.L7Policy.created_at, m.L7Policy.id)
            )
        )
        for pool_id, listener_id in rows:
            if pool_id is not None and listener_id not in found[pool_id]:
                found[pool_id].append(listener_id)
    for pool in pools:
        pool.__dict__["_listener_ids"] = found[pool.id]


def attached_listener_ids(pool: m.Pool) -> list[str]:
    return list(pool.__dict__.get("_listener_ids", []))


def get(deps: Deps, ctx: RequestContext, pool_id: str, *, check: bool = True) -> m.Pool:
    with deps.db.read() as session:
        pool = common.get_or_404(session, m.Pool, pool_id, options=LOAD)
        if check:
            authorize(ctx, "pool:get_one", pool.project_id)
        attach(session, [pool])
        return pool


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    return reads.list_live(deps, ctx, m.Pool, "pool", LISTING, params,
                           base_url, options=LOAD, attach=attach)


# ---- changing --------------------------------------------------------------------------------


def lock_pool(session: Session, pool_id: str) -> tuple[m.LoadBalancer, m.Pool]:
    """Take the tree lock of the pool's load balancer, then load the pool."""
    lb_id = session.scalar(sa.select(m.Pool.load_balancer_id).where(m.Pool.id == pool_id))
    if lb_id is None:
        raise NotFound(resource="Pool", id=pool_id)
    lb = common.lock_load_balancer(session, lb_id)
    return lb, common.get_or_404(session, m.Pool, pool_id)


def pool_listeners(session: Session, pool_id: str) -> list[m.Listener]:
    """The listeners whose config changes with the pool: default pool or L7 redirect."""
    redirecting = sa.select(m.L7Policy.listener_id).where(m.L7Policy.redirect_pool_id == pool_id)
    return list(
        session.scalars(
            sa.select(m.Listener)
            .where(sa.or_(m.Listener.default_pool_id == pool_id, m.Listener.id.in_(redirecting)))
            .order_by(m.Listener.created_at)
        )
    )


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.Pool:
    listener_id, lb_id = data.get("listener_id"), data.get("loadbalancer_id")
    if not listener_id and not lb_id:
        raise InvalidInput("Must provide at least one of: loadbalancer_id, listener_id")

    def work(session: Session) -> str:
        target_lb = lb_id
        if listener_id:
            owner = session.scalar(
                sa.select(m.Listener.load_balancer_id).where(m.Listener.id == listener_id)
            )
            if owner is None:
                raise NotFound(resource="Listener", id=listener_id)
            if lb_id and lb_id != owner:
                raise InvalidInput(
                    f"Listener {listener_id} does not belong to load balancer {lb_id}."
                )
            target_lb = owner
        lb = common.lock_load_balancer(session, str(target_lb))
        authorize(ctx, "pool:post", lb.project_id)
        listener = common.get_or_404(session, m.Listener, listener_id) if listener_id else None
        common.require_mutable(lb, listener)
        # Counted before building: the new row would otherwise count itself.
        common.check_quota(session, deps, lb.project_id, {"pool": 1})
        pool = build_pool(
            session, deps, lb, data, listener=listener, graph=GraphBuild(single_call=False)
        )
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.enqueue_child_change(session, ctx, lb, "pool", pool.id, "create")
        return pool.id

    pool_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, check=False)


def update(deps: Deps, ctx: RequestContext, pool_id: str, changes: dict[str, Any]) -> m.Pool:
    def work(session: Session) -> None:
        lb, pool = lock_pool(session, pool_id)
        authorize(ctx, "pool:put", lb.project_id)
        listeners = pool_listeners(session, pool.id)
        common.require_mutable(lb, pool, *listeners)
        pool_rules.apply_changes(deps, pool, changes, listeners)
        if "tags" in changes:
            common.set_tags(session, pool.id, tags(changes))
        pool.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, *listeners)
        common.enqueue_child_change(
            session, ctx, lb, "pool", pool.id, "update", payload={"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, check=False)


def delete(deps: Deps, ctx: RequestContext, pool_id: str) -> None:
    def work(session: Session) -> None:
        lb, pool = lock_pool(session, pool_id)
        authorize(ctx, "pool:delete", lb.project_id)
        listeners = pool_listeners(session, pool.id)
        common.require_mutable(lb, pool, *listeners)
        policy_id = session.scalar(
            sa.select(m.L7Policy.id).where(m.L7Policy.redirect_pool_id == pool.id).limit(1)
        )
        if policy_id is not None:
            raise Conflict(f"Pool {pool.id} is in use by L7 policy {policy_id}.")
        pool.provisioning_status = ProvisioningStatus.PENDING_DELETE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, *listeners)
        common.enqueue_child_change(session, ctx, lb, "pool", pool.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()
