"""Quota request models and JSON shapes. Both spellings of two keys are accepted and both
are returned: ``loadbalancer``/``load_balancer`` and ``healthmonitor``/``health_monitor``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from statera.api.schemas.base import Body
from statera.domain.errors import InvalidInput

# -1 is unlimited.
Limit = Annotated[int, Field(strict=True, ge=-1, le=2_000_000_000)]

# Key as sent -> the resource it limits.
ALIASES = {"loadbalancer": "load_balancer", "healthmonitor": "health_monitor"}


class QuotaIn(Body):
    loadbalancer: Limit | None = None
    load_balancer: Limit | None = None
    listener: Limit | None = None
    member: Limit | None = None
    pool: Limit | None = None
    healthmonitor: Limit | None = None
    health_monitor: Limit | None = None
    l7policy: Limit | None = None
    l7rule: Limit | None = None


class QuotaBody(Body):
    quota: QuotaIn


def quota_changes(quota: QuotaIn) -> dict[str, int | None]:
    """The limits the client sent, by resource name (None: back to the default)."""
    out: dict[str, int | None] = {}
    for key in quota.model_fields_set:
        resource = ALIASES.get(key, key)
        value = getattr(quota, key)
        if resource in out and out[resource] != value:
            raise InvalidInput(
                f"Invalid input for field/attribute {resource}: "
                f"{key} and {resource} were both given, with different values."
            )
        out[resource] = value
    return out


def present_quota(limits: dict[str, int], project_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {} if project_id is None else {"project_id": project_id}
    out.update(limits)
    out["loadbalancer"] = limits["load_balancer"]
    out["healthmonitor"] = limits["health_monitor"]
    return out
