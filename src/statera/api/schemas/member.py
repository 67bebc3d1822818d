"""Member request models and JSON shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from statera.api.schemas.base import UUID, Body, Name, Port, ProjectId, Tags
from statera.db import models as m
from statera.services.common import attached_tags
from statera.services.listing import fmt_time

Address = Annotated[str, StringConstraints(max_length=64)]
Weight = Annotated[int, Field(ge=0, le=256)]


class MemberSingleCreate(Body):
    name: Name | None = None
    admin_state_up: bool | None = True
    address: Address
    protocol_port: Port
    weight: Weight | None = 1
    backup: bool | None = False
    subnet_id: UUID | None = None
    monitor_port: Port | None = None
    monitor_address: Address | None = None
    tags: Tags | None = None
    request_sriov: bool | None = False


class MemberCreate(MemberSingleCreate):
    project_id: ProjectId | None = None


class MemberCreateBody(Body):
    member: MemberCreate


class MemberUpdate(Body):
    name: Name | None = None
    admin_state_up: bool | None = None
    weight: Weight | None = None
    backup: bool | None = None
    monitor_port: Port | None = None
    monitor_address: Address | None = None
    tags: Tags | None = None


class MemberUpdateBody(Body):
    member: MemberUpdate


class MembersBatchBody(Body):
    members: Annotated[list[MemberCreate], Field(max_length=10000)]


def present_member(member: m.Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "operating_status": member.operating_status,
        "provisioning_status": member.provisioning_status,
        "admin_state_up": member.enabled,
        "address": member.ip_address,
        "protocol_port": member.protocol_port,
        "weight": member.weight,
        "backup": member.backup,
        "subnet_id": member.subnet_id,
        "project_id": member.project_id,
        "tenant_id": member.project_id,
        "created_at": fmt_time(member.created_at),
        "updated_at": fmt_time(member.updated_at),
        "monitor_address": member.monitor_address,
        "monitor_port": member.monitor_port,
        "vnic_type": member.vnic_type,
        "tags": attached_tags(member),
    }
