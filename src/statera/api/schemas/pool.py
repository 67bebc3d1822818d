"""Pool request models and JSON shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from statera.api.schemas.base import UUID, Body, Name, ProjectId, Tags
from statera.api.schemas.healthmonitor import HealthMonitorSingleCreate
from statera.api.schemas.member import MemberSingleCreate
from statera.db import models as m
from statera.services.common import attached_tags
from statera.services.listing import fmt_time
from statera.services.pools import attached_listener_ids

Word = Annotated[str, StringConstraints(max_length=64)]
# Secret references; the secret store resolves them (shape is checked by the service).
Ref = Annotated[str, StringConstraints(max_length=255)]


class SessionPersistenceIn(Body):
    type: Word | None = None
    cookie_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    persistence_timeout: int | None = None
    persistence_granularity: Word | None = None


class _PoolFields(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = True
    protocol: Word
    lb_algorithm: Word
    session_persistence: SessionPersistenceIn | None = None
    tags: Tags | None = None
    tls_container_ref: Ref | None = None
    ca_tls_container_ref: Ref | None = None
    crl_container_ref: Ref | None = None
    tls_enabled: bool | None = False
    tls_ciphers: Annotated[str, StringConstraints(max_length=2048)] | None = None
    tls_versions: list[Word] | None = None
    alpn_protocols: list[Word] | None = None


class PoolCreate(_PoolFields):
    listener_id: UUID | None = None
    loadbalancer_id: UUID | None = None
    project_id: ProjectId | None = None


class PoolCreateBody(Body):
    pool: PoolCreate


class PoolSingleCreate(_PoolFields):
    """A pool inside a single-call create (under ``pools`` or as a listener's default_pool).

    ``{"name": "web"}`` alone refers to a pool of the same request by name, so protocol and
    algorithm are only required (by the service) for a new pool."""

    protocol: Word | None = None  # type: ignore[assignment]
    lb_algorithm: Word | None = None  # type: ignore[assignment]
    members: list[MemberSingleCreate] | None = None
    healthmonitor: HealthMonitorSingleCreate | None = None


class PoolUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = None
    lb_algorithm: Word | None = None
    session_persistence: SessionPersistenceIn | None = None
    tags: Tags | None = None
    tls_container_ref: Ref | None = None
    ca_tls_container_ref: Ref | None = None
    crl_container_ref: Ref | None = None
    tls_enabled: bool | None = None
    tls_ciphers: Annotated[str, StringConstraints(max_length=2048)] | None = None
    tls_versions: list[Word] | None = None
    alpn_protocols: list[Word] | None = None


class PoolUpdateBody(Body):
    pool: PoolUpdate


def present_session_persistence(pool: m.Pool) -> dict[str, Any] | None:
    sp = pool.session_persistence
    if sp is None:
        return None
    return {
        "type": sp.type,
        "cookie_name": sp.cookie_name,
        "persistence_timeout": sp.persistence_timeout,
        "persistence_granularity": sp.persistence_granularity,
    }


def present_pool(pool: m.Pool) -> dict[str, Any]:
    hm = pool.health_monitor
    return {
        "id": pool.id,
        "name": pool.name,
        "description": pool.description,
        "provisioning_status": pool.provisioning_status,
        "operating_status": pool.operating_status,
        "admin_state_up": pool.enabled,
        "protocol": pool.protocol,
        "lb_algorithm": pool.lb_algorithm,
        "session_persistence": present_session_persistence(pool),
        "project_id": pool.project_id,
        "tenant_id": pool.project_id,
        "loadbalancers": [{"id": pool.load_balancer_id}],
        "listeners": [{"id": i} for i in attached_listener_ids(pool)],
        "members": [{"id": mb.id} for mb in pool.members],
        "healthmonitor_id": hm.id if hm is not None else None,
        "created_at": fmt_time(pool.created_at),
        "updated_at": fmt_time(pool.updated_at),
        "tags": attached_tags(pool),
        "tls_container_ref": pool.tls_certificate_id,
        "ca_tls_container_ref": pool.ca_tls_certificate_id,
        "crl_container_ref": pool.crl_container_id,
        "tls_enabled": pool.tls_enabled,
        "tls_ciphers": pool.tls_ciphers,
        "tls_versions": pool.tls_versions,
        "alpn_protocols": pool.alpn_protocols,
    }
