"""Members of a pool: build (also for single-call creates), read, list, update, delete, and the
batch update of ``PUT /pools/{id}/members`` that Kubernetes' cloud provider relies on."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import OperatingStatus, ProvisioningStatus
from statera.domain.errors import DuplicateEntry, InvalidInput, NotFound
from statera.services import common, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import (
    boolean,
    check_keys,
    integer,
    invalid,
    ip_address,
    required_bool,
    tags,
    text,
)
from statera.services.pools import lock_pool, pool_listeners

LISTING = listing.Listing(
    model=m.Member,
    columns={
        "id": m.Member.id,
        "name": m.Member.name,
        "provisioning_status": m.Member.provisioning_status,
        "operating_status": m.Member.operating_status,
        "admin_state_up": m.Member.enabled,
        "project_id": m.Member.project_id,
        "tenant_id": m.Member.project_id,
        "created_at": m.Member.created_at,
        "updated_at": m.Member.updated_at,
        "address": m.Member.ip_address,
        "protocol_port": m.Member.protocol_port,
        "weight": m.Member.weight,
        "backup": m.Member.backup,
        "subnet_id": m.Member.subnet_id,
        "monitor_address": m.Member.monitor_address,
        "monitor_port": m.Member.monitor_port,
        "vnic_type": m.Member.vnic_type,
    },
)

MEMBER_KEYS = frozenset(
    {
        "name",
        "admin_state_up",
        "address",
        "protocol_port",
        "weight",
        "backup",
        "subnet_id",
        "monitor_port",
        "monitor_address",
        "tags",
        "request_sriov",
        "project_id",
        "tenant_id",
    }
)
UPDATE_KEYS = frozenset(
    {"name", "admin_state_up", "weight", "backup", "monitor_port", "monitor_address", "tags"}
)


def check_member(deps: Deps, data: Any) -> dict[str, Any]:
    """Check a member as POSTed (alone, in a pool tree or in a batch); column values out."""
    if not isinstance(data, dict):
        raise invalid("members", data, "An object is required.")
    check_keys(data, MEMBER_KEYS, "member")
    reserved = deps.settings.networking.reserved_ips
    if data.get("address") is None:
        raise invalid("address", None, "Mandatory field missing.")
    address = ip_address(data["address"], "address", reserved)
    if boolean(data, "request_sriov", False):
        raise InvalidInput(
            "request_sriov: SR-IOV member ports are not supported by this deployment."
        )
    subnet_id = data.get("subnet_id")
    if subnet_id is not None and (
        not isinstance(subnet_id, str) or deps.networks.by_subnet(subnet_id) is None
    ):
        raise InvalidInput(f"Subnet {subnet_id} could not be found.")
    monitor_address = data.get("monitor_address")
    return {
        "name": text(data, "name"),
        "enabled": boolean(data, "admin_state_up", True),
        "ip_address": address,
        "protocol_port": integer(data, "protocol_port", 1, 65535, required=True),
        "weight": integer(data, "weight", 0, 256, default=1),
        "backup": boolean(data, "backup", False),
        "subnet_id": subnet_id,
        "monitor_address": None
        if monitor_address is None
        else ip_address(monitor_address, "monitor_address", reserved),
        "monitor_port": integer(data, "monitor_port", 1, 65535),
        "tags": tags(data),
    }


def build_member(
    session: Session, deps: Deps, pool: m.Pool, data: dict[str, Any], *, graph: GraphBuild
) -> m.Member:
    """Check ``data`` and add a member (PENDING_CREATE) to ``pool``. The caller locks, checks
    quota and enqueues."""
    fields = check_member(deps, data)
    member_tags = fields.pop("tags")
    for other in pool.members:
        if (other.ip_address, other.protocol_port) == (
            fields["ip_address"],
            fields["protocol_port"],
        ):
            raise DuplicateEntry(
                resource="member",
                parent="pool",
                what=f"address {fields['ip_address']} on protocol_port {fields['protocol_port']}",
            )
    monitored = pool.health_monitor is not None
    member = m.Member(
        id=new_id(),
        project_id=pool.project_id,
        pool_id=pool.id,
        vnic_type="normal",
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE if monitored else OperatingStatus.NO_MONITOR,
        **fields,
    )
    pool.members.append(member)
    session.add(member)
    graph.add("member", member)
    common.set_tags(session, member.id, member_tags)
    return member


# ---- reading ---------------------------------------------------------------------------------


def _member_of(session: Session, pool_id: str, member_id: str) -> m.Member:
    member = session.scalar(
        sa.select(m.Member).where(m.Member.id == member_id, m.Member.pool_id == pool_id)
    )
    if member is None or member.provisioning_status == ProvisioningStatus.DELETED:
        raise NotFound(resource="Member", id=member_id)
    return member


def get(
    deps: Deps, ctx: RequestContext, pool_id: str, member_id: str, *, check: bool = True
) -> m.Member:
    with deps.db.read() as session:
        common.get_or_404(session, m.Pool, pool_id)
        member = _member_of(session, pool_id, member_id)
        if check:
            authorize(ctx, "member:get_one", member.project_id)
        common.attach_tags(session, [member])
        return member


def list_(
    deps: Deps, ctx: RequestContext, pool_id: str, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    with deps.db.read() as session:
        pool = common.get_or_404(session, m.Pool, pool_id)
        authorize(ctx, "member:get_all", pool.project_id)
        stmt = sa.select(m.Member).where(
            m.Member.pool_id == pool.id, m.Member.provisioning_status != ProvisioningStatus.DELETED
        )
        page = reads.filtered_page(session, deps, stmt, LISTING, params, base_url)
        common.attach_tags(session, page.items)
        return page


# ---- changing --------------------------------------------------------------------------------


def _lock(
    session: Session, ctx: RequestContext, pool_id: str, *actions: str, member_id: str | None = None
) -> tuple[m.LoadBalancer, m.Pool, list[m.Listener], m.Member | None]:
    """Lock the tree, authorize, and refuse unless the tree and the member are settled."""
    lb, pool = lock_pool(session, pool_id)
    member = _member_of(session, pool.id, member_id) if member_id else None
    for action in actions:
        authorize(ctx, action, lb.project_id)
    listeners = pool_listeners(session, pool.id)
    common.require_mutable(lb, pool, member, *listeners)
    return lb, pool, listeners, member


def _mark_parents(lb: m.LoadBalancer, pool: m.Pool, listeners: list[m.Listener]) -> None:
    common.mark(ProvisioningStatus.PENDING_UPDATE, lb, pool, *listeners)


def create(deps: Deps, ctx: RequestContext, pool_id: str, data: dict[str, Any]) -> m.Member:
    check_member(deps, data)  # fail fast, before taking the lock

    def work(session: Session) -> str:
        lb, pool, listeners, _ = _lock(session, ctx, pool_id, "member:post")
        common.check_quota(session, deps, lb.project_id, {"member": 1})
        member = build_member(session, deps, pool, data, graph=GraphBuild(single_call=False))
        _mark_parents(lb, pool, listeners)
        common.enqueue_child_change(session, ctx, lb, "member", member.id, "create")
        return member.id

    member_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, member_id, check=False)


def _apply_changes(session: Session, deps: Deps, member: m.Member, changes: dict[str, Any]) -> bool:
    """Apply PUT-able attributes; tell whether anything actually changed."""
    new: dict[str, Any] = {}
    if "name" in changes:
        new["name"] = text(changes, "name")
    if "admin_state_up" in changes:
        new["enabled"] = required_bool(changes, "admin_state_up")
    if "backup" in changes:
        new["backup"] = required_bool(changes, "backup")
    if "weight" in changes:
        new["weight"] = integer(changes, "weight", 0, 256, default=1)
    if "monitor_address" in changes:
        value = changes["monitor_address"]
        new["monitor_address"] = (
            None
            if value is None
            else ip_address(value, "monitor_address", deps.settings.networking.reserved_ips)
        )
    if "monitor_port" in changes:
        new["monitor_port"] = integer(changes, "monitor_port", 1, 65535)
    changed = False
    for column, value in new.items():
        if getattr(member, column) != value:
            setattr(member, column, value)
            changed = True
    if "tags" in changes:
        wanted = tags(changes) or []
        current = common.tags_of(session, [member.id])[member.id]
        if sorted(set(wanted)) != sorted(set(current)):
            common.set_tags(session, member.id, wanted)
            changed = True
    return changed


def update(
    deps: Deps, ctx: RequestContext, pool_id: str, member_id: str, changes: dict[str, Any]
) -> m.Member:
    def work(session: Session) -> None:
        lb, pool, listeners, member = _lock(
            session, ctx, pool_id, "member:put", member_id=member_id
        )
        assert member is not None
        check_keys(changes, UPDATE_KEYS, "member")
        _apply_changes(session, deps, member, changes)
        member.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        _mark_parents(lb, pool, listeners)
        common.enqueue_child_change(
            session, ctx, lb, "member", member.id, "update", payload={"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, pool_id, member_id, check=False)


def delete(deps: Deps, ctx: RequestContext, pool_id: str, member_id: str) -> None:
    def work(session: Session) -> None:
        lb, pool, listeners, member = _lock(
            session, ctx, pool_id, "member:delete", member_id=member_id
        )
        assert member is not None
        member.provisioning_status = ProvisioningStatus.PENDING_DELETE
        _mark_parents(lb, pool, listeners)
        common.enqueue_child_change(session, ctx, lb, "member", member.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()


def batch_update(
    deps: Deps,
    ctx: RequestContext,
    pool_id: str,
    items: list[dict[str, Any]],
    *,
    additive_only: bool,
) -> None:
    """Make the pool's members what ``items`` lists, matched on (address, protocol_port):
    new ones are created, listed ones updated, the others deleted (kept if additive_only).
    One operation carries the whole change; a request that changes nothing changes nothing."""
    wanted: dict[tuple[str, int], dict[str, Any]] = {}
    for item in items:
        fields = check_member(deps, item)
        key = (fields["ip_address"], fields["protocol_port"])
        if key in wanted:
            raise InvalidInput(f"Member {key[0]} port {key[1]} is listed more than once.")
        wanted[key] = item

    def work(session: Session) -> bool:
        actions = ["member:post", "member:put"] + ([] if additive_only else ["member:delete"])
        lb, pool, listeners, _ = _lock(session, ctx, pool_id, *actions)
        existing = {(mb.ip_address, mb.protocol_port): mb for mb in pool.members}
        new_keys = [key for key in wanted if key not in existing]
        gone = [] if additive_only else [mb for key, mb in existing.items() if key not in wanted]
        common.check_quota(session, deps, lb.project_id, {"member": len(new_keys) - len(gone)})
        updated = []
        for key, item in wanted.items():
            member = existing.get(key)
            if member is None:
                continue
            subnet_id = item.get("subnet_id")
            if subnet_id is not None and subnet_id != member.subnet_id:
                raise InvalidInput(
                    f"Member {member.id} is on subnet {member.subnet_id}; a "
                    "member's subnet cannot change. Delete it and add it again."
                )
            changes = {k: v for k, v in item.items() if k in UPDATE_KEYS}
            # An ERROR member that is listed again gets another try even if unchanged.
            if (
                _apply_changes(session, deps, member, changes)
                or member.provisioning_status == ProvisioningStatus.ERROR
            ):
                member.provisioning_status = ProvisioningStatus.PENDING_UPDATE
                updated.append(member.id)
        graph = GraphBuild(single_call=False)
        created = [
            build_member(session, deps, pool, wanted[key], graph=graph).id for key in new_keys
        ]
        for member in gone:
            member.provisioning_status = ProvisioningStatus.PENDING_DELETE
        if not (created or updated or gone):
            return False
        _mark_parents(lb, pool, listeners)
        common.enqueue(
            session,
            "batch_update_members",
            load_balancer_id=lb.id,
            target_type="pool",
            target_id=pool.id,
            project_id=lb.project_id,
            payload={"created": created, "updated": updated, "deleted": [mb.id for mb in gone]},
            request_id=ctx.request_id,
        )
        return True

    if deps.db.write_retrying(work):
        deps.wake_worker()
