"""L7 policy request models and JSON shape."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from statera.api.schemas.base import UUID, Body, Name, ProjectId, Tags
from statera.api.schemas.l7rule import L7RuleCreate
from statera.api.schemas.pool import PoolSingleCreate
from statera.db import models as m
from statera.domain.enums import L7PolicyAction
from statera.services.common import attached_tags
from statera.services.listing import fmt_time

RedirectUrl = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Position = Annotated[int, Field(ge=1, le=2147483647)]


class L7PolicySingleCreate(Body):
    """An L7 policy nested in a listener (single-call create): no listener_id."""

    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = True
    action: L7PolicyAction
    redirect_pool_id: UUID | None = None
    redirect_pool: PoolSingleCreate | None = None
    redirect_url: RedirectUrl | None = None
    redirect_prefix: RedirectUrl | None = None
    redirect_http_code: int | None = None
    position: Position | None = None
    rules: list[L7RuleCreate] | None = None
    tags: Tags | None = None


class L7PolicyCreate(L7PolicySingleCreate):
    listener_id: UUID
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class L7PolicyCreateBody(Body):
    l7policy: L7PolicyCreate


class L7PolicyUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = None
    action: L7PolicyAction | None = None
    redirect_pool_id: UUID | None = None
    redirect_url: RedirectUrl | None = None
    redirect_prefix: RedirectUrl | None = None
    redirect_http_code: int | None = None
    position: Position | None = None
    tags: Tags | None = None


class L7PolicyUpdateBody(Body):
    l7policy: L7PolicyUpdate


def present_l7policy(policy: m.L7Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "provisioning_status": policy.provisioning_status,
        "operating_status": policy.operating_status,
        "admin_state_up": policy.enabled,
        "project_id": policy.project_id,
        "tenant_id": policy.project_id,
        "action": policy.action,
        "listener_id": policy.listener_id,
        "redirect_pool_id": policy.redirect_pool_id,
        "redirect_url": policy.redirect_url,
        "redirect_prefix": policy.redirect_prefix,
        "redirect_http_code": policy.redirect_http_code,
        "position": policy.position,
        "rules": [{"id": rule.id} for rule in policy.rules],
        "created_at": fmt_time(policy.created_at),
        "updated_at": fmt_time(policy.updated_at),
        "tags": attached_tags(policy),
    }
