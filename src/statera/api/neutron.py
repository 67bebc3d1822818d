"""A read-only, Neutron-shaped view of the tenant networks declared in the config and the
addresses taken on them, so that the stock clients can resolve ``--vip-subnet-id NAME``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from statera.api.common import context, deps, ok, query_params
from statera.config.settings import TenantNetwork
from statera.db import models as m
from statera.domain.errors import InvalidInput, NotFound
from statera.services import policy
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import fmt_time, select_fields

router = APIRouter(tags=["networking (read-only)"])

_FILTERS = {
    "networks": {"id", "name", "shared", "status", "project_id", "tenant_id"},
    "subnets": {"id", "name", "network_id", "cidr", "ip_version", "gateway_ip", "project_id",
                "tenant_id"},
    "ports": {"id", "name", "network_id", "device_id", "device_owner", "mac_address",
              "project_id", "tenant_id", "fixed_ips"},
}


def _network(net: TenantNetwork) -> dict[str, Any]:
    return {
        "id": net.id, "name": net.name, "status": "ACTIVE", "admin_state_up": True,
        "subnets": [net.subnet_id], "shared": not net.project_id, "mtu": net.mtu,
        "project_id": net.project_id, "tenant_id": net.project_id, "description": "",
        "router:external": False, "availability_zones": [], "tags": [],
        "port_security_enabled": False, "provider:network_type": "flat",
    }


def _subnet(net: TenantNetwork) -> dict[str, Any]:
    version = 6 if ":" in net.cidr else 4
    return {
        "id": net.subnet_id, "name": net.subnet_name, "network_id": net.id,
        "cidr": net.cidr, "ip_version": version, "gateway_ip": net.gateway_ip,
        "allocation_pools": [{"start": net.allocation_start, "end": net.allocation_end}],
        "host_routes": [], "dns_nameservers": [], "enable_dhcp": False,
        "project_id": net.project_id, "tenant_id": net.project_id, "description": "",
        "tags": [], "subnetpool_id": None,
    }


def _port(port: m.Port) -> dict[str, Any]:
    return {
        "id": port.id, "name": port.name or "", "network_id": port.network_id,
        "mac_address": port.mac_address,
        "fixed_ips": [{"subnet_id": port.subnet_id, "ip_address": port.ip_address}],
        "device_id": port.device_id or "", "device_owner": port.device_owner or "",
        "status": "ACTIVE", "admin_state_up": True, "project_id": port.project_id,
        "tenant_id": port.project_id, "security_groups": [], "description": "", "tags": [],
        "created_at": fmt_time(port.created_at), "updated_at": fmt_time(port.updated_at),
    }


def _matches(item: dict[str, Any], params: dict[str, list[str]], kind: str) -> bool:
    for key, values in params.items():
        if key in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"):
            continue
        if key not in _FILTERS[kind]:
            raise InvalidInput(f"Invalid filter argument: {key}")
        if key == "fixed_ips":
            wanted = {v.split("=", 1)[1] for v in values if "=" in v}
            have = {f["ip_address"] for f in item["fixed_ips"]} | {
                f["subnet_id"] for f in item["fixed_ips"]}
            if not wanted <= have:
                return False
            continue
        if str(item.get(key)).lower() not in {v.lower() for v in values} and \
                str(item.get(key)) not in values:
            return False
    return True


def _visible(d: Deps, ctx: RequestContext) -> list[TenantNetwork]:
    policy.enforce(ctx, "network:get_all")
    admin = ctx.noauth or policy.admin(ctx, None)
    return [n for n in d.settings.networks if d.networks.visible_to(n, ctx.project_id, admin)]


def _respond(key: str, items: list[dict[str, Any]], params: dict[str, list[str]]
             ) -> JSONResponse:
    fields = [f for v in params.get("fields", []) for f in v.split(",") if f] or None
    return ok({key: [select_fields(i, fields) for i in items]})


@router.get("/networks")
def list_networks(request: Request, ctx: RequestContext = Depends(context),
                  d: Deps = Depends(deps)) -> JSONResponse:
    params = query_params(request)
    items = [_network(n) for n in _visible(d, ctx)]
    return _respond("networks", [i for i in items if _matches(i, params, "networks")], params)


@router.get("/networks/{network_id}")
def show_network(network_id: str, ctx: RequestContext = Depends(context),
                 d: Deps = Depends(deps)) -> JSONResponse:
    for net in _visible(d, ctx):
        if net.id == network_id:
            return ok({"network": _network(net)})
    raise NotFound(resource="Network", id=network_id)


@router.get("/subnets")
def list_subnets(request: Request, ctx: RequestContext = Depends(context),
                 d: Deps = Depends(deps)) -> JSONResponse:
    params = query_params(request)
    items = [_subnet(n) for n in _visible(d, ctx)]
    return _respond("subnets", [i for i in items if _matches(i, params, "subnets")], params)


@router.get("/subnets/{subnet_id}")
def show_subnet(subnet_id: str, ctx: RequestContext = Depends(context),
                d: Deps = Depends(deps)) -> JSONResponse:
    for net in _visible(d, ctx):
        if net.subnet_id == subnet_id:
            return ok({"subnet": _subnet(net)})
    raise NotFound(resource="Subnet", id=subnet_id)


def _port_query(ctx: RequestContext) -> Any:
    stmt = sa.select(m.Port).order_by(m.Port.created_at, m.Port.id)
    if not (ctx.noauth or policy.admin(ctx, None)):
        stmt = stmt.where(m.Port.project_id == ctx.project_id)
    return stmt


@router.get("/ports")
def list_ports(request: Request, ctx: RequestContext = Depends(context),
               d: Deps = Depends(deps)) -> JSONResponse:
    policy.enforce(ctx, "network:get_all")
    params = query_params(request)
    stmt = _port_query(ctx)
    if "id" in params:
        stmt = stmt.where(m.Port.id.in_(params["id"]))
    if "network_id" in params:
        stmt = stmt.where(m.Port.network_id.in_(params["network_id"]))
    if "device_id" in params:
        stmt = stmt.where(m.Port.device_id.in_(params["device_id"]))
    with d.db.read() as session:
        items = [_port(p) for p in session.scalars(stmt.limit(10000))]
    return _respond("ports", [i for i in items if _matches(i, params, "ports")], params)


@router.get("/ports/{port_id}")
def show_port(port_id: str, ctx: RequestContext = Depends(context),
              d: Deps = Depends(deps)) -> JSONResponse:
    policy.enforce(ctx, "network:get_all")
    with d.db.read() as session:
        port = session.scalars(_port_query(ctx).where(m.Port.id == port_id)).first()
        if port is None:
            raise NotFound(resource="Port", id=port_id)
        return ok({"port": _port(port)})
