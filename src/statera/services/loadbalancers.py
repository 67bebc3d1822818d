"""Load balancers: create (including the whole tree in one call), read, update, delete
(with cascade), status tree, statistics and failover."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from statera.db import models as m
from statera.domain.enums import OperatingStatus, ProvisioningStatus, Topology
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import common, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps

LISTING = listing.Listing(
    model=m.LoadBalancer,
    columns={
        "id": m.LoadBalancer.id, "name": m.LoadBalancer.name,
        "description": m.LoadBalancer.description,
        "provisioning_status": m.LoadBalancer.provisioning_status,
        "operating_status": m.LoadBalancer.operating_status,
        "admin_state_up": m.LoadBalancer.enabled, "project_id": m.LoadBalancer.project_id,
        "tenant_id": m.LoadBalancer.project_id,
        "created_at": m.LoadBalancer.created_at, "updated_at": m.LoadBalancer.updated_at,
        "provider": m.LoadBalancer.provider, "flavor_id": m.LoadBalancer.flavor_id,
        "availability_zone": m.LoadBalancer.availability_zone,
        "vip_address": m.Vip.ip_address, "vip_port_id": m.Vip.port_id,
        "vip_subnet_id": m.Vip.subnet_id, "vip_network_id": m.Vip.network_id,
        "vip_qos_policy_id": m.Vip.qos_policy_id,
    },
    joins=[(m.Vip, m.Vip.load_balancer_id == m.LoadBalancer.id)],
)

# Presenting a load balancer reads its VIPs (joined in the main query) and the ids of its
# listeners and pools and its tags (one extra query for a whole page: see attach_summary).
LOAD = (sa.orm.joinedload(m.LoadBalancer.additional_vips),
        sa.orm.noload(m.LoadBalancer.listeners), sa.orm.noload(m.LoadBalancer.pools))


def attach_summary(session: Session, lbs: Sequence[m.LoadBalancer]) -> None:
    """Load listener ids, pool ids and tags of ``lbs`` in one round trip, for presenters."""
    ids = [lb.id for lb in lbs]
    found: dict[str, dict[str, list[str]]] = {i: {"l": [], "p": [], "t": []} for i in ids}
    if ids:
        rows: list[Any] = list(session.execute(sa.union_all(
            sa.select(sa.literal("l"), m.Listener.load_balancer_id, m.Listener.id,
                      m.Listener.created_at).where(m.Listener.load_balancer_id.in_(ids)),
            sa.select(sa.literal("p"), m.Pool.load_balancer_id, m.Pool.id, m.Pool.created_at)
            .where(m.Pool.load_balancer_id.in_(ids)),
            sa.select(sa.literal("t"), m.Tag.resource_id, m.Tag.tag, sa.null())
            .where(m.Tag.resource_id.in_(ids)),
        )))
        for kind, lb_id, value, _created in sorted(
                rows, key=lambda r: (r[0], r[3] or datetime.min, r[2])):
            found[lb_id][kind].append(value)
    for lb in lbs:
        lb.__dict__["_summary"] = found[lb.id]
        lb.__dict__["_tags"] = sorted(found[lb.id]["t"])


def summary(lb: m.LoadBalancer) -> dict[str, list[str]]:
    """Listener and pool ids attached by attach_summary (or read from loaded relations)."""
    attached = lb.__dict__.get("_summary")
    if attached is not None:
        return attached  # type: ignore[no-any-return]
    return {"l": [li.id for li in lb.listeners], "p": [p.id for p in lb.pools], "t": []}

TREE_LOAD = (
    selectinload(m.LoadBalancer.listeners).selectinload(m.Listener.l7policies)
    .selectinload(m.L7Policy.rules),
    selectinload(m.LoadBalancer.pools).selectinload(m.Pool.members),
    selectinload(m.LoadBalancer.pools).selectinload(m.Pool.health_monitor),
)


def _topology_and_flavor(session: Session, deps: Deps, flavor_id: str | None,
                         provider: str) -> tuple[str, dict[str, Any]]:
    topology = deps.settings.controller_worker.loadbalancer_topology
    if flavor_id is None:
        return topology, {}
    flavor = session.get(m.Flavor, flavor_id)
    if flavor is None:
        raise InvalidInput(f"Invalid input for field/attribute flavor_id. Value: "
                           f"'{flavor_id}'. Flavor {flavor_id} not found.")
    if not flavor.enabled:
        raise InvalidInput(f"The selected flavor is not allowed in this deployment: "
                           f"{flavor_id}")
    profile = session.get(m.FlavorProfile, flavor.flavor_profile_id)
    data: dict[str, Any] = json.loads(profile.flavor_data) if profile else {}
    if profile is not None and profile.provider_name != provider and not (
            {profile.provider_name, provider} <= {"amphora", "octavia"}):
        raise InvalidInput(f"Flavor {flavor_id} is not compatible with provider {provider}.")
    topology = str(data.get("loadbalancer_topology", topology))
    if topology not in (Topology.SINGLE, Topology.ACTIVE_STANDBY):
        raise InvalidInput(f"Flavor {flavor_id} asks for an unknown topology {topology!r}.")
    return topology, data


def _check_availability_zone(session: Session, name: str | None) -> None:
    if name is None:
        return
    az = session.get(m.AvailabilityZone, name)
    if az is None:
        raise InvalidInput(f"Invalid input for field/attribute availability_zone. Value: "
                           f"'{name}'. Availability zone {name} not found.")
    if not az.enabled:
        raise InvalidInput(f"The selected availability_zone is not allowed in this "
                           f"deployment: {name}")


def _provider(deps: Deps, requested: str | None) -> str:
    api = deps.settings.api_settings
    provider = requested or api.default_provider_driver
    if provider not in api.enabled_provider_drivers:
        raise InvalidInput(f"Provider '{provider}' is not enabled.")
    return provider


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.LoadBalancer:
    project_id = common.check_project_id(ctx, data.get("project_id") or data.get("tenant_id"))
    authorize(ctx, "loadbalancer:post", project_id)
    net_opts = deps.settings.networking
    if data.get("vip_port_id") and not net_opts.allow_vip_port_id:
        raise InvalidInput("Creating a load balancer with vip_port_id is not allowed here.")
    if data.get("vip_network_id") and not net_opts.allow_vip_network_id:
        raise InvalidInput("Creating a load balancer with vip_network_id is not allowed here.")
    if data.get("vip_subnet_id") and not net_opts.allow_vip_subnet_id:
        raise InvalidInput("Creating a load balancer with vip_subnet_id is not allowed here.")
    if data.get("vip_sg_ids"):
        raise InvalidInput("vip_sg_ids is not supported by this deployment (no Neutron "
                           "security groups).")
    if data.get("vip_vnic_type") not in (None, "normal"):
        raise InvalidInput("vip_vnic_type: only 'normal' is supported.")
    provider = _provider(deps, data.get("provider"))

    def work(session: Session) -> str:
        topology, _flavor = _topology_and_flavor(session, deps, data.get("flavor_id"), provider)
        _check_availability_zone(session, data.get("availability_zone"))
        lb = m.LoadBalancer(
            id=new_id(), project_id=project_id, name=data.get("name"),
            description=data.get("description"),
            enabled=data.get("admin_state_up") is not False,
            provisioning_status=ProvisioningStatus.PENDING_CREATE,
            operating_status=OperatingStatus.OFFLINE, topology=topology, provider=provider,
            flavor_id=data.get("flavor_id"), availability_zone=data.get("availability_zone"))
        session.add(lb)
        lb.vip = _allocate_vip(session, deps, lb, data)
        for extra in data.get("additional_vips") or []:
            lb.additional_vips.append(_allocate_additional_vip(session, deps, lb, extra))
        graph = GraphBuild(single_call=True)
        graph.add("load_balancer", lb)
        _build_children(session, deps, ctx, lb, data, graph)
        common.check_quota(session, deps, project_id, graph.counts,
                           being_created=graph.created)
        session.flush()
        common.set_tags(session, lb.id, data.get("tags"))
        common.enqueue(session, "create_load_balancer", load_balancer_id=lb.id,
                       target_type="loadbalancer", target_id=lb.id, project_id=project_id,
                       payload={"topology": topology,
                                "single_call": bool(data.get("listeners") or data.get("pools"))},
                       request_id=ctx.request_id)
        return lb.id

    lb_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, lb_id, check=False)


def _build_children(session: Session, deps: Deps, ctx: RequestContext, lb: m.LoadBalancer,
                    data: dict[str, Any], graph: GraphBuild) -> None:
    from statera.services import listeners as listener_svc
    from statera.services import pools as pool_svc

    for pool_data in data.get("pools") or []:
        pool_svc.build_pool(session, deps, lb, pool_data, listener=None, graph=graph)
    for listener_data in data.get("listeners") or []:
        listener_svc.build_listener(session, deps, lb, listener_data, graph=graph)


def _allocate_vip(session: Session, deps: Deps, lb: m.LoadBalancer,
                  data: dict[str, Any]) -> m.Vip:
    nets = deps.networks
    port_id = data.get("vip_port_id")
    if port_id:
        port = session.get(m.Port, port_id)
        if port is None:
            raise InvalidInput(f"Port {port_id} could not be found.")
        if port.device_id and port.device_owner == "Octavia":
            raise Conflict(f"Port {port_id} is already used by load balancer "
                           f"{port.device_id}.")
        if data.get("vip_address") and data["vip_address"] != port.ip_address:
            raise InvalidInput(f"VIP address {data['vip_address']} does not match port "
                               f"{port_id}.")
        port.device_id, port.device_owner = lb.id, "Octavia"
        return m.Vip(ip_address=port.ip_address, port_id=port.id, subnet_id=port.subnet_id,
                     network_id=port.network_id, qos_policy_id=data.get("vip_qos_policy_id"),
                     octavia_owned=False)
    placement = nets.resolve_vip(subnet_id=data.get("vip_subnet_id"),
                                 network_id=data.get("vip_network_id"),
                                 ip_address=data.get("vip_address"))
    if not nets.visible_to(placement.network, lb.project_id, admin=True):
        raise InvalidInput(f"Network {placement.network.id} could not be found.")
    port = nets.take_address(session, placement.network, ip_address=placement.ip_address,
                             name=f"octavia-lb-{lb.id}", device_owner="Octavia",
                             device_id=lb.id, project_id=lb.project_id)
    return m.Vip(ip_address=port.ip_address, port_id=port.id,
                 subnet_id=placement.network.subnet_id, network_id=placement.network.id,
                 qos_policy_id=data.get("vip_qos_policy_id"), octavia_owned=True)


def _allocate_additional_vip(session: Session, deps: Deps, lb: m.LoadBalancer,
                             extra: dict[str, Any]) -> m.AdditionalVip:
    placement = deps.networks.resolve_vip(subnet_id=extra.get("subnet_id"), network_id=None,
                                          ip_address=extra.get("ip_address"))
    if lb.vip is not None and placement.network.subnet_id == lb.vip.subnet_id:
        raise InvalidInput("An additional VIP must be on another subnet than the VIP.")
    port = deps.networks.take_address(
        session, placement.network, ip_address=placement.ip_address,
        name=f"octavia-lb-{lb.id}-extra", device_owner="Octavia", device_id=lb.id,
        project_id=lb.project_id)
    return m.AdditionalVip(subnet_id=placement.network.subnet_id, ip_address=port.ip_address,
                           port_id=port.id, network_id=placement.network.id)


def get(deps: Deps, ctx: RequestContext, lb_id: str, *, check: bool = True) -> m.LoadBalancer:
    with deps.db.read() as session:
        lb = common.get_or_404(session, m.LoadBalancer, lb_id, options=LOAD)
        if check:
            authorize(ctx, "loadbalancer:get_one", lb.project_id)
        attach_summary(session, [lb])
        return lb


def get_tree(deps: Deps, ctx: RequestContext, lb_id: str) -> m.LoadBalancer:
    """The load balancer with every child loaded and tagged, for the full-tree answer."""
    options = (
        selectinload(m.LoadBalancer.listeners).selectinload(m.Listener.l7policies)
        .selectinload(m.L7Policy.rules),
        selectinload(m.LoadBalancer.listeners).selectinload(m.Listener.load_balancer),
        selectinload(m.LoadBalancer.pools).selectinload(m.Pool.members),
        selectinload(m.LoadBalancer.pools).selectinload(m.Pool.health_monitor),
        selectinload(m.LoadBalancer.pools).selectinload(m.Pool.load_balancer),
    )
    with deps.db.read() as session:
        lb = common.get_or_404(session, m.LoadBalancer, lb_id, options=options)
        authorize(ctx, "loadbalancer:get_one", lb.project_id)
        objs: list[Any] = [lb]
        for li in lb.listeners:
            objs.append(li)
            for pol in li.l7policies:
                objs.append(pol)
                objs.extend(pol.rules)
        for pool in lb.pools:
            objs.append(pool)
            objs.extend(pool.members)
            if pool.health_monitor is not None:
                objs.append(pool.health_monitor)
        common.attach_tags(session, objs)
        from statera.services import pools as pool_svc

        pool_svc.attach(session, lb.pools)
        return lb


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    return reads.list_live(deps, ctx, m.LoadBalancer, "loadbalancer", LISTING, params,
                           base_url, options=LOAD, attach=attach_summary)


def update(deps: Deps, ctx: RequestContext, lb_id: str, changes: dict[str, Any]
           ) -> m.LoadBalancer:
    if changes.get("vip_sg_ids"):
        raise InvalidInput("vip_sg_ids is not supported by this deployment.")

    def work(session: Session) -> None:
        lb = common.lock_load_balancer(session, lb_id)
        authorize(ctx, "loadbalancer:put", lb.project_id)
        common.require_mutable(lb)
        for key in ("name", "description"):
            if key in changes:
                setattr(lb, key, changes[key])
        if "admin_state_up" in changes:
            if changes["admin_state_up"] is None:
                raise InvalidInput("Invalid input for field/attribute admin_state_up. Value: "
                                   "'None'. A boolean is required.")
            lb.enabled = changes["admin_state_up"]
        if "vip_qos_policy_id" in changes and lb.vip is not None:
            lb.vip.qos_policy_id = changes["vip_qos_policy_id"]
        if "tags" in changes:
            common.set_tags(session, lb.id, changes["tags"])
        lb.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        common.enqueue(session, "update_load_balancer", load_balancer_id=lb.id,
                       target_type="loadbalancer", target_id=lb.id, project_id=lb.project_id,
                       payload={"changes": sorted(changes)}, request_id=ctx.request_id)

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, lb_id, check=False)


def delete(deps: Deps, ctx: RequestContext, lb_id: str, *, cascade: bool) -> None:
    def work(session: Session) -> None:
        lb = common.lock_load_balancer(session, lb_id)
        authorize(ctx, "loadbalancer:delete", lb.project_id)
        common.require_mutable(lb, allow_error=True)
        children = session.scalar(sa.select(sa.func.count()).select_from(m.Listener).where(
            m.Listener.load_balancer_id == lb.id)) or 0
        children += session.scalar(sa.select(sa.func.count()).select_from(m.Pool).where(
            m.Pool.load_balancer_id == lb.id)) or 0
        if children and not cascade:
            raise InvalidInput(f"Cannot delete Load Balancer {lb.id} - it has children")
        lb.provisioning_status = ProvisioningStatus.PENDING_DELETE
        if cascade:
            _mark_tree(session, lb, ProvisioningStatus.PENDING_DELETE)
        common.enqueue(session, "delete_load_balancer", load_balancer_id=lb.id,
                       target_type="loadbalancer", target_id=lb.id, project_id=lb.project_id,
                       payload={"cascade": cascade}, request_id=ctx.request_id)

    deps.db.write_retrying(work)
    deps.wake_worker()


def _mark_tree(session: Session, lb: m.LoadBalancer, status: ProvisioningStatus) -> None:
    listener_ids = sa.select(m.Listener.id).where(m.Listener.load_balancer_id == lb.id)
    pool_ids = sa.select(m.Pool.id).where(m.Pool.load_balancer_id == lb.id)
    policy_ids = sa.select(m.L7Policy.id).where(m.L7Policy.listener_id.in_(listener_ids))
    for model, cond in (
        (m.Listener, m.Listener.load_balancer_id == lb.id),
        (m.Pool, m.Pool.load_balancer_id == lb.id),
        (m.Member, m.Member.pool_id.in_(pool_ids)),
        (m.HealthMonitor, m.HealthMonitor.pool_id.in_(pool_ids)),
        (m.L7Policy, m.L7Policy.listener_id.in_(listener_ids)),
        (m.L7Rule, m.L7Rule.l7policy_id.in_(policy_ids)),
    ):
        session.execute(sa.update(model).where(cond).values(provisioning_status=status)
                        .execution_options(synchronize_session=False))


def failover(deps: Deps, ctx: RequestContext, lb_id: str) -> None:
    def work(session: Session) -> None:
        lb = common.lock_load_balancer(session, lb_id)
        authorize(ctx, "loadbalancer:put_failover", lb.project_id)
        common.require_mutable(lb, allow_error=True)
        lb.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        common.enqueue(session, "failover_load_balancer", load_balancer_id=lb.id,
                       target_type="loadbalancer", target_id=lb.id, project_id=lb.project_id,
                       request_id=ctx.request_id)

    deps.db.write_retrying(work)
    deps.wake_worker()


def stats(deps: Deps, ctx: RequestContext, lb_id: str) -> dict[str, int]:
    with deps.db.read() as session:
        lb = common.get_or_404(session, m.LoadBalancer, lb_id)
        authorize(ctx, "loadbalancer:get_stats", lb.project_id)
        listener_ids = sa.select(m.Listener.id).where(m.Listener.load_balancer_id == lb.id)
        return sum_stats(session, m.ListenerStatistics.listener_id.in_(listener_ids))


def sum_stats(session: Session, condition: Any) -> dict[str, int]:
    s = m.ListenerStatistics
    row = session.execute(sa.select(
        sa.func.coalesce(sa.func.sum(s.bytes_in), 0),
        sa.func.coalesce(sa.func.sum(s.bytes_out), 0),
        sa.func.coalesce(sa.func.sum(s.active_connections), 0),
        sa.func.coalesce(sa.func.sum(s.total_connections), 0),
        sa.func.coalesce(sa.func.sum(s.request_errors), 0),
    ).where(condition)).one()
    keys = ("bytes_in", "bytes_out", "active_connections", "total_connections",
            "request_errors")
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


def status_tree(deps: Deps, ctx: RequestContext, lb_id: str) -> dict[str, Any]:
    with deps.db.read() as session:
        lb = common.get_or_404(session, m.LoadBalancer, lb_id, options=TREE_LOAD)
        authorize(ctx, "loadbalancer:get_status", lb.project_id)
        pools = {p.id: p for p in lb.pools}

        def pool_status(pool: m.Pool) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": pool.id, "name": pool.name or "",
                "provisioning_status": pool.provisioning_status,
                "operating_status": pool.operating_status,
                "members": [{"id": mb.id, "name": mb.name or "",
                             "provisioning_status": mb.provisioning_status,
                             "operating_status": mb.operating_status,
                             "address": mb.ip_address, "protocol_port": mb.protocol_port}
                            for mb in pool.members],
            }
            hm = pool.health_monitor
            if hm is not None:
                hm_status = {"id": hm.id, "name": hm.name or "", "type": hm.type,
                             "provisioning_status": hm.provisioning_status,
                             "operating_status": hm.operating_status}
                out["health_monitor"] = hm_status
                out["healthmonitor"] = hm_status
            return out

        listeners = []
        for li in lb.listeners:
            used = []
            if li.default_pool_id and li.default_pool_id in pools:
                used.append(li.default_pool_id)
            for pol in li.l7policies:
                if pol.redirect_pool_id and pol.redirect_pool_id in pools and \
                        pol.redirect_pool_id not in used:
                    used.append(pol.redirect_pool_id)
            listeners.append({
                "id": li.id, "name": li.name or "",
                "provisioning_status": li.provisioning_status,
                "operating_status": li.operating_status,
                "pools": [pool_status(pools[pid]) for pid in used],
                "l7policies": [{
                    "id": pol.id, "name": pol.name or "", "action": pol.action,
                    "provisioning_status": pol.provisioning_status,
                    "operating_status": pol.operating_status,
                    "rules": [{"id": r.id, "type": r.type,
                               "provisioning_status": r.provisioning_status,
                               "operating_status": r.operating_status}
                              for r in pol.rules]} for pol in li.l7policies],
            })
        return {"statuses": {"loadbalancer": {
            "id": lb.id, "name": lb.name or "",
            "provisioning_status": lb.provisioning_status,
            "operating_status": lb.operating_status,
            "listeners": listeners,
        }}}


def lb_for_child(session: Session, lb_id: str) -> m.LoadBalancer:
    lb = session.get(m.LoadBalancer, lb_id)
    if lb is None:
        raise NotFound(resource="Load Balancer", id=lb_id)
    return lb
