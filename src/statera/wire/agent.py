"""Amphora agent API 1.0: the bodies the controller and the agent exchange.

Both sides import these shapes, so a field is named once. Bodies are validated strictly
where a value ends up on a command line or in a path (addresses, MACs, ids); unknown fields
an upstream controller may send (``is_sriov``, ``vip_net_info``) are accepted and ignored.

The constants, id rules and the agent config file live in ``statera.wire.agent_core`` (no
pydantic there: the agent process imports only that, and validates these bodies with its own
light checks in ``statera.agent.bodies``); they are re-exported here.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from statera.wire.agent_core import (
    AGENT_PORT,
    API_VERSION,
    CERT_FILENAME_RE,
    CONTROLLER_LIST_RE,
    MAC_RE,
    NAMESPACE_RE,
    PATH_PREFIX,
    UUID_RE,
    AgentConfigFile,
    is_cert_filename,
    is_uuid,
    parse_agent_config,
    render_agent_config,
)

__all__ = [
    "AGENT_PORT", "API_VERSION", "CERT_FILENAME_RE", "CONTROLLER_LIST_RE", "MAC_RE",
    "NAMESPACE_RE", "PATH_PREFIX", "UUID_RE", "AdditionalVip", "AgentConfigFile",
    "CertificateMd5", "Details", "FixedIp", "FrontendStats", "HostRoute", "Info",
    "InterfaceName", "IpAddressAdapter", "ListenerEntry", "Message", "PlugNetwork", "PlugVip",
    "VersionInfo", "is_cert_filename", "is_uuid", "parse_agent_config",
    "render_agent_config",
]


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _cidr(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def _mac(value: str) -> str:
    if not MAC_RE.match(value):
        raise ValueError("not a MAC address")
    return value.lower()


IpAddress = Annotated[str, AfterValidator(_ip)]
Cidr = Annotated[str, AfterValidator(_cidr)]
MacAddress = Annotated[str, AfterValidator(_mac)]
Mtu = Annotated[int, Field(ge=68, le=65535)]
IpAddressAdapter: TypeAdapter[str] = TypeAdapter(IpAddress)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HostRoute(_Body):
    destination: Cidr
    nexthop: IpAddress


class AdditionalVip(_Body):
    ip_address: IpAddress
    subnet_cidr: Cidr
    gateway: IpAddress | None = None
    host_routes: list[HostRoute] = Field(default_factory=list)


class PlugVip(_Body):
    """POST /plug/vip/{vip}"""

    subnet_cidr: Cidr
    gateway: IpAddress | None = None
    mac_address: MacAddress
    vrrp_ip: IpAddress | None = None
    mtu: Mtu | None = None
    host_routes: list[HostRoute] = Field(default_factory=list)
    additional_vips: list[AdditionalVip] = Field(default_factory=list)


class FixedIp(_Body):
    ip_address: IpAddress
    subnet_cidr: Cidr
    gateway: IpAddress | None = None
    host_routes: list[HostRoute] = Field(default_factory=list)


class PlugNetwork(_Body):
    """POST /plug/network"""

    mac_address: MacAddress
    fixed_ips: list[FixedIp] = Field(default_factory=list)
    mtu: Mtu | None = None


class Message(_Body):
    """Every non-2xx answer, and most 2xx ones that carry no data."""

    message: str
    details: str = ""


class VersionInfo(_Body):
    api_version: str = API_VERSION


class Info(_Body):
    hostname: str
    uuid: str
    haproxy_version: str
    api_version: str = API_VERSION


class Details(Info):
    haproxy_count: int
    cpu: dict[str, int]
    memory: dict[str, int]
    disk: dict[str, int]
    load: list[str]
    topology: str
    topology_status: str
    listeners: list[str]
    packages: dict[str, str] = Field(default_factory=dict)
    networks: dict[str, dict[str, int]] = Field(default_factory=dict)
    lvs_listener_process_count: int = 0
    active_tuned_profiles: str = ""


class ListenerEntry(_Body):
    """One entry of GET /listeners: a load balancer's haproxy and whether it runs."""

    status: str  # ACTIVE | STOPPED | ERROR
    uuid: str
    type: str = "HAPROXY"


class CertificateMd5(_Body):
    md5sum: str


class InterfaceName(_Body):
    interface: str


class FrontendStats(_Body):
    """GET /loadbalancer/{lb_id}/stats (a Statera extension of API 1.0): one HAProxy
    frontend's counters; the frontend is named after its listener id."""

    name: str
    bytes_in: int = 0
    bytes_out: int = 0
    active_connections: int = 0
    total_connections: int = 0
    request_errors: int = 0
    status: str = ""
