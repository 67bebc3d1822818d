"""Listener request models and JSON shape.

The models check types, enumerations, lengths and ranges. Rules that depend on the protocol,
the load balancer or the deployment's settings live in ``services/listeners.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from statera.api.schemas.base import UUID, Body, Name, Port, ProjectId, Tags
from statera.api.schemas.l7policy import L7PolicySingleCreate
from statera.api.schemas.pool import PoolSingleCreate
from statera.db import models as m
from statera.domain.enums import AlpnProtocol, ClientAuthentication, ListenerProtocol, TlsVersion
from statera.services.common import attached_tags
from statera.services.listing import fmt_time

# Upstream's MAX_TIMEOUT: 24 days, in milliseconds.
Timeout = Annotated[int, Field(ge=0, le=2073600000)]
ConnectionLimit = Annotated[int, Field(ge=-1)]
ContainerRef = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Cidr = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Ciphers = Annotated[str, StringConstraints(max_length=2048)]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
HeaderFlag = Annotated[str, StringConstraints(max_length=16)]


class _ListenerFields(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = True
    protocol: ListenerProtocol
    protocol_port: Port
    connection_limit: ConnectionLimit | None = None
    default_tls_container_ref: ContainerRef | None = None
    sni_container_refs: list[ContainerRef] | None = None
    default_pool_id: UUID | None = None
    default_pool: PoolSingleCreate | None = None
    l7policies: list[L7PolicySingleCreate] | None = None
    insert_headers: dict[HeaderName, HeaderFlag] | None = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    timeout_tcp_inspect: Timeout | None = None
    tags: Tags | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = None
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: list[Cidr] | None = None
    tls_ciphers: Ciphers | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: Annotated[int, Field(ge=0)] | None = None
    hsts_include_subdomains: bool | None = None
    hsts_preload: bool | None = None


class ListenerSingleCreate(_ListenerFields):
    """A listener nested in a load balancer (single-call create): no loadbalancer_id."""


class ListenerCreate(_ListenerFields):
    loadbalancer_id: UUID
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class ListenerCreateBody(Body):
    listener: ListenerCreate


class ListenerUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: bool | None = None
    connection_limit: ConnectionLimit | None = None
    default_tls_container_ref: ContainerRef | None = None
    sni_container_refs: list[ContainerRef] | None = None
    default_pool_id: UUID | None = None
    insert_headers: dict[HeaderName, HeaderFlag] | None = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    timeout_tcp_inspect: Timeout | None = None
    tags: Tags | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = None
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: list[Cidr] | None = None
    tls_ciphers: Ciphers | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: Annotated[int, Field(ge=0)] | None = None
    hsts_include_subdomains: bool | None = None
    hsts_preload: bool | None = None


class ListenerUpdateBody(Body):
    listener: ListenerUpdate


def present_listener(li: m.Listener) -> dict[str, Any]:
    return {
        "id": li.id,
        "name": li.name,
        "description": li.description,
        "provisioning_status": li.provisioning_status,
        "operating_status": li.operating_status,
        "admin_state_up": li.enabled,
        "project_id": li.project_id,
        "tenant_id": li.project_id,
        "protocol": li.protocol,
        "protocol_port": li.protocol_port,
        "connection_limit": li.connection_limit,
        "default_tls_container_ref": li.tls_certificate_id,
        "sni_container_refs": [sni.tls_container_id for sni in li.sni_containers],
        "default_pool_id": li.default_pool_id,
        "l7policies": [{"id": pol.id} for pol in li.l7policies],
        "insert_headers": dict(li.insert_headers or {}),
        "loadbalancers": [{"id": li.load_balancer_id}],
        "created_at": fmt_time(li.created_at),
        "updated_at": fmt_time(li.updated_at),
        "timeout_client_data": li.timeout_client_data,
        "timeout_member_connect": li.timeout_member_connect,
        "timeout_member_data": li.timeout_member_data,
        "timeout_tcp_inspect": li.timeout_tcp_inspect,
        "tags": attached_tags(li),
        "client_ca_tls_container_ref": li.client_ca_tls_certificate_id,
        "client_authentication": li.client_authentication,
        "client_crl_container_ref": li.client_crl_container_id,
        "allowed_cidrs": sorted(c.cidr for c in li.allowed_cidrs) or None,
        "tls_ciphers": li.tls_ciphers,
        "tls_versions": list(li.tls_versions) if li.tls_versions is not None else None,
        "alpn_protocols": list(li.alpn_protocols) if li.alpn_protocols is not None else None,
        "hsts_max_age": li.hsts_max_age,
        "hsts_include_subdomains": bool(li.hsts_include_subdomains),
        "hsts_preload": bool(li.hsts_preload),
    }
