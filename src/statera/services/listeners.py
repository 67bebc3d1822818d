"""Listeners: the create/read/update/delete of listeners on a load balancer, with the default
pool and L7 policies a single-call create gives inline.

What a listener may be (protocol, TLS settings, header insertion, allowed CIDRs, default
pools) is checked in ``listener_rules``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import ListenerProtocol, OperatingStatus, ProvisioningStatus
from statera.domain.errors import InvalidInput
from statera.services import common, l7policies, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import check_text, required_bool
from statera.services.l7policies import lock_listener_tree
from statera.services.listener_rules import (
    STATE_KEYS,
    TIMEOUTS,
    apply_state,
    check_int,
    check_pool_protocol,
    check_port_free,
    check_protocol,
    routable_pool,
    settle_state,
    state_of,
)
from statera.services.loadbalancers import sum_stats

LISTING = listing.Listing(
    model=m.Listener,
    columns={
        "id": m.Listener.id,
        "name": m.Listener.name,
        "description": m.Listener.description,
        "provisioning_status": m.Listener.provisioning_status,
        "operating_status": m.Listener.operating_status,
        "admin_state_up": m.Listener.enabled,
        "project_id": m.Listener.project_id,
        "tenant_id": m.Listener.project_id,
        "created_at": m.Listener.created_at,
        "updated_at": m.Listener.updated_at,
        "protocol": m.Listener.protocol,
        "protocol_port": m.Listener.protocol_port,
        "connection_limit": m.Listener.connection_limit,
        "default_pool_id": m.Listener.default_pool_id,
        "loadbalancer_id": m.Listener.load_balancer_id,
        "default_tls_container_ref": m.Listener.tls_certificate_id,
        "client_ca_tls_container_ref": m.Listener.client_ca_tls_certificate_id,
        "client_crl_container_ref": m.Listener.client_crl_container_id,
        "client_authentication": m.Listener.client_authentication,
        **{t: getattr(m.Listener, t) for t in TIMEOUTS},
        "tls_ciphers": m.Listener.tls_ciphers,
        "hsts_max_age": m.Listener.hsts_max_age,
        "hsts_include_subdomains": m.Listener.hsts_include_subdomains,
        "hsts_preload": m.Listener.hsts_preload,
    },
)

# What presenting a listener reads; loaded up front because sessions close early.
LOAD = (
    selectinload(m.Listener.l7policies).load_only(m.L7Policy.id),
    selectinload(m.Listener.sni_containers),
    selectinload(m.Listener.allowed_cidrs),
)


# ---- building ------------------------------------------------------------------------------


def build_listener(
    session: Session, deps: Deps, lb: m.LoadBalancer, data: dict[str, Any], *, graph: GraphBuild
) -> m.Listener:
    """Validate ``data`` and add a listener (PENDING_CREATE) to ``lb``, with the default
    pool and L7 policies given inline."""
    protocol = str(data.get("protocol"))
    check_protocol(deps, protocol)
    port = check_int("protocol_port", data.get("protocol_port"), 1, 65535)
    for field in ("name", "description"):
        if data.get(field) is not None:
            check_text(field, data[field])
    st = {key: data.get(key) for key in STATE_KEYS}
    st["protocol"] = protocol
    given = {key for key in STATE_KEYS if data.get(key) is not None}
    settle_state(deps, lb, st, given)
    nested_pool = data.get("default_pool")
    if nested_pool is not None and st["default_pool_id"] is not None:
        raise InvalidInput("Give either default_pool_id or default_pool, not both.")
    if st["default_pool_id"] is not None:
        routable_pool(session, lb, protocol, st["default_pool_id"])
    check_port_free(lb, protocol, port)

    listener = m.Listener(
        id=new_id(),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        name=data.get("name"),
        description=data.get("description"),
        protocol=protocol,
        protocol_port=port,
        enabled=data.get("admin_state_up") is not False,
        default_pool_id=st["default_pool_id"],
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
    )
    apply_state(listener, st)
    lb.listeners.append(listener)
    graph.add("listener", listener)
    if nested_pool is not None:
        _nested_default_pool(session, deps, lb, listener, nested_pool, graph)
    for policy_data in data.get("l7policies") or []:
        l7policies.build_l7policy(session, deps, lb, listener, policy_data, graph=graph)
    if data.get("tags"):
        session.flush()
        common.set_tags(session, listener.id, data["tags"])
    return listener


def _nested_default_pool(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    listener: m.Listener,
    pool_data: dict[str, Any],
    graph: GraphBuild,
) -> None:
    """A default pool given inline: a name listed under the LB's ``pools``, or a new pool."""
    name = pool_data.get("name")
    if pool_data.get("protocol") is None and name in graph.pools_by_name:
        pool = graph.pools_by_name[name]
        check_pool_protocol(listener.protocol, pool.protocol)
        listener.default_pool_id = pool.id
        return
    if listener.protocol == ListenerProtocol.PROMETHEUS:
        raise InvalidInput("PROMETHEUS listeners cannot send traffic to a pool.")
    from statera.services import pools

    pools.build_pool(session, deps, lb, pool_data, listener=listener, graph=graph)


# ---- operations ----------------------------------------------------------------------------


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.Listener:
    def work(session: Session) -> str:
        lb = common.lock_load_balancer(session, data["loadbalancer_id"])
        authorize(ctx, "listener:post", lb.project_id)
        common.require_mutable(lb)
        graph = GraphBuild(single_call=False)
        listener = build_listener(session, deps, lb, data, graph=graph)
        common.check_quota(session, deps, lb.project_id, graph.counts, being_created=graph.created)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb)
        common.enqueue_child_change(session, ctx, lb, "listener", listener.id, "create")
        return listener.id

    listener_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, listener_id, check=False)


def get(deps: Deps, ctx: RequestContext, listener_id: str, *, check: bool = True) -> m.Listener:
    return reads.get_tagged(
        deps, ctx, m.Listener, listener_id, "listener:get_one", check=check, options=LOAD
    )


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    return reads.list_live(deps, ctx, m.Listener, "listener", LISTING, params,
                           base_url, options=LOAD)


def update(
    deps: Deps, ctx: RequestContext, listener_id: str, changes: dict[str, Any]
) -> m.Listener:
    def work(session: Session) -> None:
        lb, listener = lock_listener_tree(session, listener_id)
        authorize(ctx, "listener:put", lb.project_id)
        common.require_mutable(lb, listener)
        st = state_of(listener)
        given = set(changes) & STATE_KEYS
        for key in given:
            st[key] = changes[key]
        # A null resets a setting to its default (TLS ones only on TLS listeners).
        settle_state(deps, lb, st, {k for k in given if changes[k] is not None})
        if changes.get("default_pool_id") is not None:
            routable_pool(session, lb, listener.protocol, changes["default_pool_id"])
        apply_state(listener, st)
        if "default_pool_id" in changes:
            listener.default_pool_id = changes["default_pool_id"]
        for field in ("name", "description"):
            if field in changes:
                setattr(listener, field, changes[field])
        if "admin_state_up" in changes:
            listener.enabled = required_bool(changes, "admin_state_up")
        if "tags" in changes:
            common.set_tags(session, listener.id, changes["tags"])
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.enqueue_child_change(
            session, ctx, lb, "listener", listener.id, "update", {"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, listener_id, check=False)


def delete(deps: Deps, ctx: RequestContext, listener_id: str) -> None:
    def work(session: Session) -> None:
        lb, listener = lock_listener_tree(session, listener_id)
        authorize(ctx, "listener:delete", lb.project_id)
        common.require_mutable(lb, listener)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb)
        # The listener's L7 policies and rules go with it.
        for policy in listener.l7policies:
            common.mark(ProvisioningStatus.PENDING_DELETE, policy, *policy.rules)
        common.mark(ProvisioningStatus.PENDING_DELETE, listener)
        common.enqueue_child_change(session, ctx, lb, "listener", listener.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()


def stats(deps: Deps, ctx: RequestContext, listener_id: str) -> dict[str, int]:
    with deps.db.read() as session:
        listener = common.get_or_404(session, m.Listener, listener_id)
        authorize(ctx, "listener:get_stats", listener.project_id)
        return sum_stats(session, m.ListenerStatistics.listener_id == listener.id)
