"""Load balancer request models and JSON shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from statera.api.schemas.base import UUID, Body, Name, ProjectId, Tags
from statera.api.schemas.listener import ListenerSingleCreate
from statera.api.schemas.pool import PoolSingleCreate
from statera.db import models as m
from statera.services.common import attached_tags
from statera.services.listing import fmt_time
from statera.services.loadbalancers import summary


class AdditionalVipIn(Body):
    subnet_id: UUID
    ip_address: Annotated[str, StringConstraints(max_length=64)] | None = None
    port_id: UUID | None = None


class LoadBalancerCreate(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = True
    vip_address: Annotated[str, StringConstraints(max_length=64)] | None = None
    vip_port_id: UUID | None = None
    vip_subnet_id: UUID | None = None
    vip_network_id: UUID | None = None
    vip_qos_policy_id: UUID | None = None
    vip_sg_ids: list[UUID] | None = None
    vip_vnic_type: Annotated[str, StringConstraints(max_length=64)] | None = None
    additional_vips: list[AdditionalVipIn] | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    listeners: list[ListenerSingleCreate] | None = None
    pools: list[PoolSingleCreate] | None = None
    provider: Annotated[str, StringConstraints(max_length=64)] | None = None
    tags: Tags | None = None
    flavor_id: UUID | None = None
    availability_zone: Annotated[str, StringConstraints(max_length=255)] | None = None


class LoadBalancerCreateBody(Body):
    loadbalancer: LoadBalancerCreate


class LoadBalancerUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    vip_qos_policy_id: UUID | None = None
    admin_state_up: bool | None = None
    vip_sg_ids: list[UUID] | None = None
    tags: Tags | None = None


class LoadBalancerUpdateBody(Body):
    loadbalancer: LoadBalancerUpdate


def present_loadbalancer(lb: m.LoadBalancer) -> dict[str, Any]:
    vip = lb.vip
    ids = summary(lb)
    return {
        "id": lb.id,
        "name": lb.name,
        "description": lb.description,
        "provisioning_status": lb.provisioning_status,
        "operating_status": lb.operating_status,
        "admin_state_up": lb.enabled,
        "project_id": lb.project_id,
        "tenant_id": lb.project_id,
        "created_at": fmt_time(lb.created_at),
        "updated_at": fmt_time(lb.updated_at),
        "vip_address": vip.ip_address if vip else None,
        "vip_port_id": vip.port_id if vip else None,
        "vip_subnet_id": vip.subnet_id if vip else None,
        "vip_network_id": vip.network_id if vip else None,
        "vip_qos_policy_id": vip.qos_policy_id if vip else None,
        "vip_vnic_type": vip.vnic_type if vip else "normal",
        "vip_sg_ids": [],
        "additional_vips": [
            {"subnet_id": av.subnet_id, "ip_address": av.ip_address, "port_id": av.port_id,
             "network_id": av.network_id} for av in lb.additional_vips],
        "listeners": [{"id": i} for i in ids["l"]],
        "pools": [{"id": i} for i in ids["p"]],
        "provider": lb.provider or "octavia",
        "flavor_id": lb.flavor_id,
        "availability_zone": lb.availability_zone,
        "tags": attached_tags(lb),
    }


STATS_ZERO = {"bytes_in": 0, "bytes_out": 0, "active_connections": 0, "total_connections": 0,
              "request_errors": 0}
