"""Plain data for one load balancer's tree as the worker, drivers and renderers see it.

These are built from database rows by `db.loaders` and carry no behaviour beyond small,
pure helpers. They are the input of config rendering and of every amphora driver call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    network_id: str
    name: str
    cidr: str
    gateway_ip: str | None
    allocation_start: str
    allocation_end: str
    host_routes: tuple[tuple[str, str], ...] = ()
    ip_version: int = 4


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str
    bridge: str
    mtu: int
    subnets: tuple[Subnet, ...] = ()


@dataclass(slots=True)
class Vip:
    ip_address: str | None
    subnet_id: str | None
    network_id: str | None
    port_id: str | None
    qos_policy_id: str | None = None
    octavia_owned: bool = True


@dataclass(slots=True)
class AdditionalVip:
    subnet_id: str
    ip_address: str | None
    network_id: str | None = None
    port_id: str | None = None


@dataclass(slots=True)
class SessionPersistence:
    type: str
    cookie_name: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None


@dataclass(slots=True)
class HealthMonitor:
    id: str
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    http_method: str | None = None
    url_path: str | None = None
    expected_codes: str | None = None
    http_version: float | None = None
    domain_name: str | None = None
    enabled: bool = True
    provisioning_status: str = "ACTIVE"


@dataclass(slots=True)
class Member:
    id: str
    address: str
    protocol_port: int
    weight: int = 1
    backup: bool = False
    enabled: bool = True
    subnet_id: str | None = None
    monitor_address: str | None = None
    monitor_port: int | None = None
    provisioning_status: str = "ACTIVE"
    operating_status: str = "NO_MONITOR"


@dataclass(slots=True)
class Pool:
    id: str
    protocol: str
    lb_algorithm: str
    enabled: bool = True
    name: str | None = None
    session_persistence: SessionPersistence | None = None
    health_monitor: HealthMonitor | None = None
    members: list[Member] = field(default_factory=list)
    tls_enabled: bool = False
    tls_certificate_id: str | None = None
    ca_tls_certificate_id: str | None = None
    crl_container_id: str | None = None
    tls_ciphers: str | None = None
    tls_versions: list[str] = field(default_factory=list)
    alpn_protocols: list[str] = field(default_factory=list)
    provisioning_status: str = "ACTIVE"


@dataclass(slots=True)
class L7Rule:
    id: str
    type: str
    compare_type: str
    value: str
    key: str | None = None
    invert: bool = False
    enabled: bool = True


@dataclass(slots=True)
class L7Policy:
    id: str
    action: str
    position: int
    enabled: bool = True
    redirect_pool_id: str | None = None
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_http_code: int | None = None
    rules: list[L7Rule] = field(default_factory=list)


@dataclass(slots=True)
class Listener:
    id: str
    protocol: str
    protocol_port: int
    enabled: bool = True
    name: str | None = None
    connection_limit: int = -1
    default_pool_id: str | None = None
    default_tls_container_ref: str | None = None
    sni_container_refs: list[str] = field(default_factory=list)
    client_ca_tls_container_ref: str | None = None
    client_authentication: str = "NONE"
    client_crl_container_ref: str | None = None
    insert_headers: dict[str, str] = field(default_factory=dict)
    timeout_client_data: int | None = None
    timeout_member_connect: int | None = None
    timeout_member_data: int | None = None
    timeout_tcp_inspect: int | None = None
    allowed_cidrs: list[str] = field(default_factory=list)
    tls_ciphers: str | None = None
    tls_versions: list[str] = field(default_factory=list)
    alpn_protocols: list[str] = field(default_factory=list)
    hsts_max_age: int | None = None
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False
    l7policies: list[L7Policy] = field(default_factory=list)
    peer_port: int | None = None
    provisioning_status: str = "ACTIVE"


@dataclass(slots=True)
class Amphora:
    id: str
    status: str
    role: str | None = None
    load_balancer_id: str | None = None
    compute_id: str | None = None
    lb_network_ip: str | None = None
    vrrp_ip: str | None = None
    ha_ip: str | None = None
    vrrp_port_id: str | None = None
    ha_port_id: str | None = None
    vrrp_interface: str | None = None
    vrrp_id: int | None = None
    vrrp_priority: int | None = None
    cert_expiration: datetime | None = None
    config_stale: bool = False


@dataclass(slots=True)
class LoadBalancer:
    id: str
    project_id: str
    topology: str
    enabled: bool = True
    name: str | None = None
    provisioning_status: str = "ACTIVE"
    vip: Vip | None = None
    additional_vips: list[AdditionalVip] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    amphorae: list[Amphora] = field(default_factory=list)
    flavor: dict[str, object] = field(default_factory=dict)

    def pool(self, pool_id: str) -> Pool | None:
        return next((p for p in self.pools if p.id == pool_id), None)
