"""Health monitor request models and JSON shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from statera.api.schemas.base import UUID, Body, Name, ProjectId, Tags
from statera.db import models as m
from statera.services.common import attached_tags
from statera.services.listing import fmt_time

Word = Annotated[str, StringConstraints(max_length=64)]
UrlPath = Annotated[str, StringConstraints(max_length=2048)]
DomainName = Annotated[str, StringConstraints(max_length=255)]


class HealthMonitorSingleCreate(Body):
    name: Name | None = None
    type: Word
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int | None = 3
    http_method: Word | None = None
    url_path: UrlPath | None = None
    expected_codes: Word | None = None
    admin_state_up: bool | None = True
    tags: Tags | None = None
    http_version: float | None = None
    domain_name: DomainName | None = None


class HealthMonitorCreate(HealthMonitorSingleCreate):
    pool_id: UUID
    project_id: ProjectId | None = None


class HealthMonitorCreateBody(Body):
    healthmonitor: HealthMonitorCreate


class HealthMonitorUpdate(Body):
    name: Name | None = None
    delay: int | None = None
    timeout: int | None = None
    max_retries: int | None = None
    max_retries_down: int | None = None
    http_method: Word | None = None
    url_path: UrlPath | None = None
    expected_codes: Word | None = None
    admin_state_up: bool | None = None
    tags: Tags | None = None
    http_version: float | None = None
    domain_name: DomainName | None = None


class HealthMonitorUpdateBody(Body):
    healthmonitor: HealthMonitorUpdate


def present_healthmonitor(hm: m.HealthMonitor) -> dict[str, Any]:
    return {
        "id": hm.id,
        "name": hm.name,
        "type": hm.type,
        "delay": hm.delay,
        "timeout": hm.timeout,
        "max_retries": hm.rise_threshold,
        "max_retries_down": hm.fall_threshold,
        "http_method": hm.http_method,
        "url_path": hm.url_path,
        "expected_codes": hm.expected_codes,
        "admin_state_up": hm.enabled,
        "project_id": hm.project_id,
        "tenant_id": hm.project_id,
        "pools": [{"id": hm.pool_id}],
        "provisioning_status": hm.provisioning_status,
        "operating_status": hm.operating_status,
        "created_at": fmt_time(hm.created_at),
        "updated_at": fmt_time(hm.updated_at),
        "http_version": hm.http_version,
        "domain_name": hm.domain_name,
        "tags": attached_tags(hm),
    }
