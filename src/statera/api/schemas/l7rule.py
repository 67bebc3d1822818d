"""L7 rule request models and JSON shape.

The models check types, enumerations and lengths; what a value may contain for each rule
type is checked by ``services/l7rules.py``, which also serves the single-call create path.
"""

from __future__ import annotations

from typing import Any

from statera.api.schemas.base import Body, Name, ProjectId, Tags
from statera.db import models as m
from statera.domain.enums import L7RuleCompareType, L7RuleType
from statera.services.common import attached_tags
from statera.services.listing import fmt_time


class L7RuleCreate(Body):
    type: L7RuleType
    compare_type: L7RuleCompareType
    key: Name | None = None
    value: Name
    invert: bool | None = False
    admin_state_up: bool | None = True
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None
    tags: Tags | None = None


class L7RuleCreateBody(Body):
    rule: L7RuleCreate


class L7RuleUpdate(Body):
    type: L7RuleType | None = None
    compare_type: L7RuleCompareType | None = None
    key: Name | None = None
    value: Name | None = None
    invert: bool | None = None
    admin_state_up: bool | None = None
    tags: Tags | None = None


class L7RuleUpdateBody(Body):
    rule: L7RuleUpdate


def present_l7rule(rule: m.L7Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "type": rule.type,
        "compare_type": rule.compare_type,
        "key": rule.key,
        "value": rule.value,
        "invert": rule.invert,
        "provisioning_status": rule.provisioning_status,
        "operating_status": rule.operating_status,
        "admin_state_up": rule.enabled,
        "project_id": rule.project_id,
        "tenant_id": rule.project_id,
        "created_at": fmt_time(rule.created_at),
        "updated_at": fmt_time(rule.updated_at),
        "tags": attached_tags(rule),
    }
