"""Amphora agent API 1.0: the bodies the controller and the agent exchange.

Both sides import these shapes, so a field is named once. Bodies are validated strictly
where a value ends up on a command line or in a path (addresses, MACs, ids); unknown fields
an upstream controller may send (``is_sriov``, ``vip_net_info``) are accepted and ignored.

The agent config file (``amphora-agent.conf``) is an INI file in upstream's section and option
names, plus Statera's ``[amphora_agent] haproxy_namespace``; ``render_agent_config`` and
``parse_agent_config`` are its two directions.
"""

from __future__ import annotations

import configparser
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

API_VERSION = "1.0"
PATH_PREFIX = f"/{API_VERSION}"
AGENT_PORT = 9443

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
# Certificate file names: they become paths, so no separators, no leading dot. PEM bundles
# end in .pem (API 1.0); Statera also stores a listener's crt-list (``<id>.crt-list``) there.
CERT_FILENAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}\.(pem|crt-list)$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


def is_cert_filename(value: str) -> bool:
    return bool(CERT_FILENAME_RE.match(value)) and ".." not in value


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


# ---- the agent config file ---------------------------------------------------------------

CONTROLLER_LIST_RE = re.compile(r"^\[?[0-9A-Fa-f.:]+\]?:\d{1,5}$")
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class AgentConfigFile:
    """What ``amphora-agent.conf`` holds. ``heartbeat_key`` is a secret: never shown."""

    amphora_id: str
    server_cert: str = "/etc/statera/certs/server.pem"
    client_ca: str = "/etc/statera/certs/client_ca.pem"
    base_path: str = "/var/lib/statera-agent"
    bind_host: str = "::"
    bind_port: int = AGENT_PORT
    haproxy_cmd: str = "/usr/sbin/haproxy"
    haproxy_namespace: str = ""
    topology: str = "SINGLE"
    controller_ip_port_list: tuple[str, ...] = ()
    heartbeat_interval: int = 10
    heartbeat_key: str = field(default="", repr=False)
    debug: bool = False

    def __post_init__(self) -> None:
        if not is_uuid(self.amphora_id):
            raise ValueError("[amphora_agent] amphora_id must be a UUID")
        if self.haproxy_namespace and not NAMESPACE_RE.match(self.haproxy_namespace):
            raise ValueError("[amphora_agent] haproxy_namespace is not a valid namespace name")
        if not 0 < self.bind_port < 65536:
            raise ValueError("[haproxy_amphora] bind_port must be 1-65535")
        if self.heartbeat_interval < 1:
            raise ValueError("[health_manager] heartbeat_interval must be >= 1")
        for item in self.controller_ip_port_list:
            if not CONTROLLER_LIST_RE.match(item):
                raise ValueError(f"[health_manager] controller_ip_port_list: bad entry {item!r}")


# (section, option, attribute): upstream's names where the option exists upstream.
_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("DEFAULT", "debug", "debug"),
    ("amphora_agent", "amphora_id", "amphora_id"),
    ("amphora_agent", "agent_server_cert", "server_cert"),
    ("amphora_agent", "agent_server_ca", "client_ca"),
    ("amphora_agent", "haproxy_namespace", "haproxy_namespace"),
    ("amphora_agent", "topology", "topology"),
    ("haproxy_amphora", "base_path", "base_path"),
    ("haproxy_amphora", "bind_host", "bind_host"),
    ("haproxy_amphora", "bind_port", "bind_port"),
    ("haproxy_amphora", "haproxy_cmd", "haproxy_cmd"),
    ("health_manager", "controller_ip_port_list", "controller_ip_port_list"),
    ("health_manager", "heartbeat_interval", "heartbeat_interval"),
    ("health_manager", "heartbeat_key", "heartbeat_key"),
)


def render_agent_config(conf: AgentConfigFile) -> str:
    sections: dict[str, list[str]] = {}
    for section, option, attr in _OPTIONS:
        value: Any = getattr(conf, attr)
        if isinstance(value, tuple):
            value = ", ".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        text = str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"[{section}] {option}: a value cannot span lines")
        sections.setdefault(section, []).append(f"{option} = {text}")
    return "".join(f"[{name}]\n" + "\n".join(lines) + "\n\n"
                   for name, lines in sections.items())


def parse_agent_config(text: str) -> AgentConfigFile:
    """Parse an agent config file; ValueError names the bad option (never its value)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"agent config: {type(exc).__name__}") from None
    values: dict[str, Any] = {}
    for section, option, attr in _OPTIONS:
        if section == "DEFAULT":
            raw = parser.defaults().get(option)
        elif parser.has_option(section, option):
            raw = parser.get(section, option)
        else:
            raw = None
        if raw is None:
            continue
        raw = raw.strip()
        try:
            if attr in ("bind_port", "heartbeat_interval"):
                values[attr] = int(raw)
            elif attr == "debug":
                values[attr] = raw.lower() in ("1", "true", "yes", "on")
            elif attr == "controller_ip_port_list":
                values[attr] = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                values[attr] = raw
        except ValueError:
            raise ValueError(f"[{section}] {option}: not a valid value") from None
    if "amphora_id" not in values:
        raise ValueError("[amphora_agent] amphora_id is required")
    return AgentConfigFile(**values)
