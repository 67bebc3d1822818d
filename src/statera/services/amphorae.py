"""The admin amphora API: read amphorae and their statistics, push a fresh agent config,
fail one over, and remove one that is in ERROR. Every change is an operation for the worker.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import AmphoraStatus, ProvisioningStatus
from statera.domain.errors import ImmutableObject, NotFound
from statera.services import common, listing
from statera.services.common import authorize
from statera.services.context import RequestContext
from statera.services.deps import Deps

A = m.Amphora
LISTING = listing.Listing(
    model=A,
    taggable=False,
    columns={
        "id": A.id,
        "loadbalancer_id": A.load_balancer_id,
        "compute_id": A.compute_id,
        "lb_network_ip": A.lb_network_ip,
        "vrrp_ip": A.vrrp_ip,
        "ha_ip": A.ha_ip,
        "vrrp_port_id": A.vrrp_port_id,
        "ha_port_id": A.ha_port_id,
        "cert_expiration": A.cert_expiration,
        "cert_busy": A.cert_busy,
        "role": A.role,
        "status": A.status,
        "vrrp_interface": A.vrrp_interface,
        "vrrp_id": A.vrrp_id,
        "vrrp_priority": A.vrrp_priority,
        "cached_zone": A.cached_zone,
        "created_at": A.created_at,
        "updated_at": A.updated_at,
        "image_id": A.image_id,
        "compute_flavor": A.compute_flavor,
    },
)

STAT_KEYS = ("active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections")


def _live(session: Session, amphora_id: str, *, for_update: bool = False) -> m.Amphora:
    """An amphora that is not DELETED (those are only kept until housekeeping purges them)."""
    amp = session.get(A, amphora_id, with_for_update=for_update)
    if amp is None or amp.status == AmphoraStatus.DELETED:
        raise NotFound(resource="Amphora", id=amphora_id)
    return amp


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    authorize(ctx, "amphora:get_all", None)
    with deps.db.read() as session:
        stmt = sa.select(A).where(A.status != AmphoraStatus.DELETED)
        stmt = listing.apply_filters(stmt, LISTING, params)
        return listing.paginate(
            session,
            stmt,
            LISTING,
            params,
            base_url=base_url,
            max_limit=deps.settings.api_settings.pagination_max_limit,
        )


def get(deps: Deps, ctx: RequestContext, amphora_id: str) -> m.Amphora:
    authorize(ctx, "amphora:get_one", None)
    with deps.db.read() as session:
        return _live(session, amphora_id)


def stats(deps: Deps, ctx: RequestContext, amphora_id: str) -> list[dict[str, Any]]:
    """One entry per listener of the amphora's load balancer, as last reported by it."""
    authorize(ctx, "amphora:get_stats", None)
    with deps.db.read() as session:
        amp = _live(session, amphora_id)
        if amp.load_balancer_id is None:
            return []
        listener_ids = session.scalars(
            sa.select(m.Listener.id)
            .where(
                m.Listener.load_balancer_id == amp.load_balancer_id,
                m.Listener.provisioning_status != ProvisioningStatus.DELETED,
            )
            .order_by(m.Listener.created_at, m.Listener.id)
        ).all()
        reported = {
            s.listener_id: s
            for s in session.scalars(
                sa.select(m.ListenerStatistics).where(m.ListenerStatistics.amphora_id == amp.id)
            )
        }
        out = []
        for listener_id in listener_ids:
            row = reported.get(listener_id)
            entry: dict[str, Any] = {
                "id": amp.id,
                "listener_id": listener_id,
                "loadbalancer_id": amp.load_balancer_id,
            }
            entry.update({k: int(getattr(row, k) or 0) if row else 0 for k in STAT_KEYS})
            out.append(entry)
        return out


def update_config(deps: Deps, ctx: RequestContext, amphora_id: str) -> None:
    """Render the amphora agent's config again and push it (202)."""
    authorize(ctx, "amphora:put_config", None)

    def work(session: Session) -> None:
        amp = _live(session, amphora_id)
        common.enqueue(
            session,
            "update_amphora_config",
            load_balancer_id=amp.load_balancer_id,
            target_type="amphora",
            target_id=amp.id,
            payload={},
            request_id=ctx.request_id,
        )

    deps.db.write_retrying(work)
    deps.wake_worker()


def failover(deps: Deps, ctx: RequestContext, amphora_id: str) -> None:
    """Replace one amphora. Its load balancer, if any, is locked and goes PENDING_UPDATE."""
    authorize(ctx, "amphora:put_failover", None)

    def work(session: Session) -> None:
        amp = _live(session, amphora_id)
        project_id = None
        if amp.load_balancer_id is not None:
            lb = common.lock_load_balancer(session, amp.load_balancer_id)
            common.require_mutable(lb, allow_error=True)
            lb.provisioning_status = ProvisioningStatus.PENDING_UPDATE
            project_id = lb.project_id
        common.enqueue(
            session,
            "failover_amphora",
            load_balancer_id=amp.load_balancer_id,
            target_type="amphora",
            target_id=amp.id,
            project_id=project_id,
            payload={},
            request_id=ctx.request_id,
        )

    deps.db.write_retrying(work)
    deps.wake_worker()


def delete(deps: Deps, ctx: RequestContext, amphora_id: str) -> None:
    """Remove an amphora in ERROR (any other status: 409)."""
    authorize(ctx, "amphora:delete", None)

    def work(session: Session) -> None:
        amp = _live(session, amphora_id, for_update=True)
        if amp.status != AmphoraStatus.ERROR:
            raise ImmutableObject(resource="Amphora", id=amp.id)
        amp.status = AmphoraStatus.PENDING_DELETE
        common.enqueue(
            session,
            "delete_amphora",
            load_balancer_id=amp.load_balancer_id,
            target_type="amphora",
            target_id=amp.id,
            payload={},
            request_id=ctx.request_id,
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
