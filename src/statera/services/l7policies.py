"""L7 policies: action-specific fields, redirect pools, positions, and the
create/read/update/delete of policies on HTTP and TERMINATED_HTTPS listeners."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import L7PolicyAction, OperatingStatus, ProvisioningStatus
from statera.domain.errors import InvalidInput, NotFound
from statera.services import common, l7rules, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import (
    HTTP_LISTENER_PROTOCOLS,
    URI_CHARS,
    check_text,
    invalid,
    one_of,
    required_bool,
)
from statera.services.listener_rules import check_pool_protocol, routable_pool

REDIRECT_CODES = (301, 302, 303, 307, 308)
DEFAULT_REDIRECT_CODE = 302
# The redirect field each action needs; the other two must be null.
ACTION_FIELD = {
    L7PolicyAction.REDIRECT_TO_POOL: "redirect_pool_id",
    L7PolicyAction.REDIRECT_TO_URL: "redirect_url",
    L7PolicyAction.REDIRECT_PREFIX: "redirect_prefix",
}
REDIRECT_FIELDS = ("redirect_pool_id", "redirect_url", "redirect_prefix")
_URL_ACTIONS = (L7PolicyAction.REDIRECT_TO_URL, L7PolicyAction.REDIRECT_PREFIX)

LISTING = listing.Listing(
    model=m.L7Policy,
    columns={
        "id": m.L7Policy.id,
        "name": m.L7Policy.name,
        "description": m.L7Policy.description,
        "provisioning_status": m.L7Policy.provisioning_status,
        "operating_status": m.L7Policy.operating_status,
        "admin_state_up": m.L7Policy.enabled,
        "project_id": m.L7Policy.project_id,
        "tenant_id": m.L7Policy.project_id,
        "created_at": m.L7Policy.created_at,
        "updated_at": m.L7Policy.updated_at,
        "action": m.L7Policy.action,
        "listener_id": m.L7Policy.listener_id,
        "redirect_pool_id": m.L7Policy.redirect_pool_id,
        "redirect_url": m.L7Policy.redirect_url,
        "redirect_prefix": m.L7Policy.redirect_prefix,
        "redirect_http_code": m.L7Policy.redirect_http_code,
        "position": m.L7Policy.position,
    },
)

# What presenting a policy reads; loaded up front because sessions close early.
LOAD = (selectinload(m.L7Policy.rules).load_only(m.L7Rule.id),)


# ---- validation ------------------------------------------------------------------------------


def check_url(field: str, value: Any) -> None:
    check_text(field, value)
    # RFC 3986 characters only: no spaces, quotes, angle brackets or backslashes.
    parts = urlsplit(value) if URI_CHARS.fullmatch(value) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise invalid(
            field,
            value,
            "An absolute http:// or https:// URL without spaces or control characters is required.",
        )


def _check_action(state: dict[str, Any]) -> None:
    action = state["action"]
    one_of("action", action, L7PolicyAction)
    wanted = ACTION_FIELD.get(action)
    for field in REDIRECT_FIELDS:
        if field == wanted and state[field] is None:
            raise invalid(field, None, f"Action {action} needs a {field}.")
        if field != wanted and state[field] is not None:
            raise invalid(
                field, state[field], f"Action {action} does not use {field}; leave it null."
            )
    code = state["redirect_http_code"]
    if action in _URL_ACTIONS:
        if code not in REDIRECT_CODES:
            raise invalid(
                "redirect_http_code",
                code,
                f"Value should be one of {', '.join(map(str, REDIRECT_CODES))}.",
            )
    elif code is not None:
        raise invalid(
            "redirect_http_code",
            code,
            "Only REDIRECT_TO_URL and REDIRECT_PREFIX policies take a redirect code.",
        )


def _nested_pool(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    listener: m.Listener,
    pool_data: dict[str, Any],
    graph: GraphBuild,
) -> m.Pool:
    """A redirect pool given inline: a name listed under the LB's ``pools``, or a new pool."""
    name = pool_data.get("name")
    if pool_data.get("protocol") is None and name in graph.pools_by_name:
        pool = graph.pools_by_name[name]
    else:
        from statera.services import pools

        pool = pools.build_pool(session, deps, lb, pool_data, listener=None, graph=graph)
    check_pool_protocol(listener.protocol, pool.protocol)
    return pool


def _place(listener: m.Listener, policy: m.L7Policy, position: int | None) -> None:
    """Put ``policy`` at ``position`` (default: last) and renumber the listener's policies
    1..N; policies being deleted go after the rest."""
    others = sorted(
        (p for p in listener.l7policies if p is not policy), key=lambda p: p.position or 0
    )
    alive = [p for p in others if p.provisioning_status != ProvisioningStatus.PENDING_DELETE]
    dying = [p for p in others if p.provisioning_status == ProvisioningStatus.PENDING_DELETE]
    if policy.provisioning_status == ProvisioningStatus.PENDING_DELETE:
        dying.insert(0, policy)
    else:
        index = len(alive) if position is None else min(position, len(alive) + 1) - 1
        alive.insert(index, policy)
    for number, p in enumerate(alive + dying, start=1):
        if p.position != number:
            p.position = number


# ---- building ------------------------------------------------------------------------------


def build_l7policy(
    session: Session,
    deps: Deps,
    lb: m.LoadBalancer,
    listener: m.Listener,
    data: dict[str, Any],
    *,
    graph: GraphBuild,
) -> m.L7Policy:
    """Validate ``data`` and add a policy (PENDING_CREATE), with its rules, to ``listener``."""
    if listener.protocol not in HTTP_LISTENER_PROTOCOLS:
        raise InvalidInput(
            f"L7 policies can only be used on HTTP and TERMINATED_HTTPS "
            f"listeners, not on {listener.protocol} listener {listener.id}."
        )
    action = str(data.get("action"))
    nested_pool = data.get("redirect_pool")
    if nested_pool is not None and data.get("redirect_pool_id") is not None:
        raise InvalidInput("Give either redirect_pool_id or redirect_pool, not both.")
    state = {field: data.get(field) for field in REDIRECT_FIELDS}
    state["action"] = action
    state["redirect_http_code"] = data.get("redirect_http_code")
    if action in _URL_ACTIONS and state["redirect_http_code"] is None:
        state["redirect_http_code"] = DEFAULT_REDIRECT_CODE
    for field in ("redirect_url", "redirect_prefix"):
        if state[field] is not None:
            check_url(field, state[field])
    if nested_pool is not None:
        state["redirect_pool_id"] = "(inline pool)"
    _check_action(state)
    for field in ("name", "description"):
        if data.get(field) is not None:
            check_text(field, data[field])

    if nested_pool is not None:
        state["redirect_pool_id"] = _nested_pool(session, deps, lb, listener, nested_pool, graph).id
    elif state["redirect_pool_id"] is not None:
        routable_pool(session, lb, listener.protocol, state["redirect_pool_id"])

    policy = m.L7Policy(
        id=new_id(),
        project_id=listener.project_id,
        listener_id=listener.id,
        name=data.get("name"),
        description=data.get("description"),
        action=action,
        redirect_pool_id=state["redirect_pool_id"],
        redirect_url=state["redirect_url"],
        redirect_prefix=state["redirect_prefix"],
        redirect_http_code=state["redirect_http_code"],
        enabled=data.get("admin_state_up") is not False,
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
    )
    listener.l7policies.append(policy)
    _place(listener, policy, data.get("position"))
    graph.add("l7policy", policy)
    for rule_data in data.get("rules") or []:
        l7rules.build_l7rule(session, deps, policy, rule_data, graph=graph)
    if data.get("tags"):
        session.flush()
        common.set_tags(session, policy.id, data["tags"])
    return policy


# ---- operations ----------------------------------------------------------------------------


def lock_listener_tree(session: Session, listener_id: str) -> tuple[m.LoadBalancer, m.Listener]:
    """Take the tree lock of the load balancer a listener belongs to, then load the listener."""
    lb_id = session.scalar(
        sa.select(m.Listener.load_balancer_id).where(m.Listener.id == listener_id)
    )
    if lb_id is None:
        raise NotFound(resource="Listener", id=listener_id)
    lb = common.lock_load_balancer(session, lb_id)
    return lb, common.get_or_404(session, m.Listener, listener_id)


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.L7Policy:
    def work(session: Session) -> str:
        lb, listener = lock_listener_tree(session, data["listener_id"])
        authorize(ctx, "l7policy:post", lb.project_id)
        common.require_mutable(lb, listener)
        graph = GraphBuild(single_call=False)
        policy = build_l7policy(session, deps, lb, listener, data, graph=graph)
        common.check_quota(session, deps, lb.project_id, graph.counts, being_created=graph.created)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.enqueue_child_change(session, ctx, lb, "l7policy", policy.id, "create")
        return policy.id

    policy_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, policy_id, check=False)


def get(deps: Deps, ctx: RequestContext, policy_id: str, *, check: bool = True) -> m.L7Policy:
    return reads.get_tagged(
        deps, ctx, m.L7Policy, policy_id, "l7policy:get_one", check=check, options=LOAD
    )


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    return reads.list_live(deps, ctx, m.L7Policy, "l7policy", LISTING, params,
                           base_url, options=LOAD)


def _updated_state(policy: m.L7Policy, changes: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {field: getattr(policy, field) for field in REDIRECT_FIELDS}
    state["action"] = policy.action
    state["redirect_http_code"] = policy.redirect_http_code
    if "action" in changes:
        if changes["action"] is None:
            raise invalid("action", None, "This attribute cannot be null.")
        state["action"] = str(changes["action"])
        # Switching action drops the fields of the old one, unless they are sent again.
        wanted = ACTION_FIELD.get(state["action"])
        for field in REDIRECT_FIELDS:
            if field != wanted and field not in changes:
                state[field] = None
        if state["action"] not in _URL_ACTIONS and "redirect_http_code" not in changes:
            state["redirect_http_code"] = None
    for field in (*REDIRECT_FIELDS, "redirect_http_code"):
        if field in changes:
            state[field] = changes[field]
    if state["action"] in _URL_ACTIONS and state["redirect_http_code"] is None:
        state["redirect_http_code"] = DEFAULT_REDIRECT_CODE
    return state


def update(deps: Deps, ctx: RequestContext, policy_id: str, changes: dict[str, Any]) -> m.L7Policy:
    def work(session: Session) -> None:
        lb, listener, policy = l7rules.lock_policy_tree(session, policy_id)
        authorize(ctx, "l7policy:put", lb.project_id)
        common.require_mutable(lb, listener, policy)
        state = _updated_state(policy, changes)
        for field in ("redirect_url", "redirect_prefix"):
            if field in changes and changes[field] is not None:
                check_url(field, changes[field])
        _check_action(state)
        if changes.get("redirect_pool_id") is not None:
            routable_pool(session, lb, listener.protocol, changes["redirect_pool_id"])
        for field in ("action", *REDIRECT_FIELDS, "redirect_http_code"):
            setattr(policy, field, state[field])
        for field in ("name", "description"):
            if field in changes:
                setattr(policy, field, changes[field])
        if "admin_state_up" in changes:
            policy.enabled = required_bool(changes, "admin_state_up")
        if "position" in changes:
            _place(listener, policy, changes["position"])
        if "tags" in changes:
            common.set_tags(session, policy.id, changes["tags"])
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener, policy)
        common.enqueue_child_change(
            session, ctx, lb, "l7policy", policy.id, "update", {"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, policy_id, check=False)


def delete(deps: Deps, ctx: RequestContext, policy_id: str) -> None:
    def work(session: Session) -> None:
        lb, listener, policy = l7rules.lock_policy_tree(session, policy_id)
        authorize(ctx, "l7policy:delete", lb.project_id)
        common.require_mutable(lb, listener, policy)
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, listener)
        common.mark(ProvisioningStatus.PENDING_DELETE, policy, *policy.rules)
        # The remaining policies keep contiguous positions while this one goes away.
        _place(listener, policy, None)
        common.enqueue_child_change(session, ctx, lb, "l7policy", policy.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()
