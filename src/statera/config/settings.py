"""Statera's settings: octavia.conf section and option names wherever the concept exists.

Read order: built-in defaults, then the INI file, then environment variables named
``STATERA_<SECTION>__<OPTION>`` (for example ``STATERA_DATABASE__CONNECTION``). Every value is
checked at start; a bad one stops the process with a message naming the option.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statera.config.options import opt, parse_value, section_fields
from statera.domain.errors import ConfigError

OWASP_SUITE_B = (
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256"
)
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
ALPN = ("h2", "http/1.1", "http/1.0")


def _default_state_path() -> str:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/statera"
    return str(Path.home() / ".local" / "share" / "statera")


@dataclass
class DefaultSection:
    host: str = opt(socket.gethostname(), "Name of this controller host, shown as operation owner.")
    debug: bool = opt(False, "Log at DEBUG level.")
    state_path: str = opt(
        _default_state_path(),
        "Directory for Statera's own state: the SQLite database, PKI and amphora files.",
    )


@dataclass
class DatabaseSection:
    connection: str = opt(
        "",
        "SQLAlchemy URL of the database. Empty: SQLite at <state_path>/statera.db. Examples: "
        "mysql+pymysql://user:pw@127.0.0.1/statera, postgresql+psycopg://user@127.0.0.1/statera.",
        secret=True,
    )
    pool_size: int = opt(10, "Connections kept open per process (MariaDB, PostgreSQL).", minimum=1)
    max_overflow: int = opt(20, "Extra connections allowed above pool_size.", minimum=0)


@dataclass
class ApiSettingsSection:
    bind_host: str = opt("127.0.0.1", "Address the API listens on.")
    bind_port: int = opt(9876, "Port the API listens on.", minimum=0, maximum=65535)
    auth_strategy: str = opt(
        "noauth",
        "noauth: no authentication, every caller is admin and the project comes from the "
        "X-Project-Id header (development only). http_basic: users managed with "
        "'statera user add', each with a project and roles.",
        choices=("noauth", "http_basic"),
    )
    noauth_project_id: str = opt(
        "default",
        "Under noauth, the project of requests that name none (no X-Project-Id header and no "
        "project_id in the body), such as the stock CLI with --os-auth-type none. Empty: "
        "refuse such requests as upstream does.")
    api_base_uri: str = opt("", "Base URL used in links. Empty: taken from each request.")
    pagination_max_limit: int = opt(1000, "Largest page a list returns.", minimum=1)
    allow_pagination: bool = opt(True, "Honour limit/marker/page_reverse.")
    allow_sorting: bool = opt(True, "Honour sort/sort_key/sort_dir.")
    allow_filtering: bool = opt(True, "Honour attribute filters on lists.")
    allow_field_selection: bool = opt(True, "Honour fields=.")
    healthcheck_enabled: bool = opt(True, "Serve GET /healthcheck.")
    allow_tls_terminated_listeners: bool = opt(True, "Allow TERMINATED_HTTPS listeners.")
    allow_ping_health_monitors: bool = opt(True, "Allow PING health monitors.")
    allow_prometheus_listeners: bool = opt(True, "Allow PROMETHEUS listeners.")
    enabled_provider_drivers: dict[str, str] = opt(
        {"amphora": "The Statera amphora driver.",
         "octavia": "Deprecated alias of the amphora driver."},
        "Provider drivers offered to users, as name:description pairs.",
    )
    default_provider_driver: str = opt("amphora", "Provider used when a request names none.")
    udp_connect_min_interval_health_monitor: int = opt(
        3, "Smallest delay allowed for UDP-CONNECT health monitors.", minimum=0)
    default_listener_ciphers: str = opt(OWASP_SUITE_B, "Ciphers for new TLS listeners.")
    default_pool_ciphers: str = opt(OWASP_SUITE_B, "Ciphers for new TLS pools.")
    tls_cipher_prohibit_list: list[str] = opt([], "Ciphers users may not request.")
    default_listener_tls_versions: list[str] = opt(
        ["TLSv1.2", "TLSv1.3"], "TLS versions for new TLS listeners.", choices=TLS_VERSIONS)
    default_pool_tls_versions: list[str] = opt(
        ["TLSv1.2", "TLSv1.3"], "TLS versions for new TLS pools.", choices=TLS_VERSIONS)
    minimum_tls_version: str | None = opt(
        None, "Lowest TLS version users may request.", choices=TLS_VERSIONS)
    default_listener_alpn_protocols: list[str] = opt(
        ["h2", "http/1.1", "http/1.0"], "ALPN protocols for new TLS listeners.", choices=ALPN)
    default_pool_alpn_protocols: list[str] = opt(
        ["h2", "http/1.1", "http/1.0"], "ALPN protocols for new TLS pools.", choices=ALPN)


@dataclass
class ControllerWorkerSection:
    workers: int = opt(4, "Operations one worker process runs at once.", minimum=1, maximum=256)
    amphora_driver: str = opt(
        "auto", "Amphora driver: amphora_haproxy_rest_driver (the agent over mutual TLS), "
        "amphora_noop_driver, or auto (see compute_driver).",
        choices=("auto", "amphora_haproxy_rest_driver", "rest", "amphora_noop_driver", "noop"))
    compute_driver: str = opt(
        "auto", "Compute driver: compute_netns_driver (namespaces on this host, needs root "
        "and haproxy), compute_noop_driver, or auto: the real drivers (netns, bridge, "
        "haproxy REST) when running as root on Linux with haproxy, ip and nft installed, "
        "else the noop drivers with a warning naming what is missing.",
        choices=("auto", "compute_netns_driver", "netns", "compute_noop_driver", "noop"))
    network_driver: str = opt(
        "auto", "Network driver: network_bridge_driver (Linux bridges), network_noop_driver, "
        "or auto (see compute_driver).",
        choices=("auto", "network_bridge_driver", "bridge", "network_noop_driver", "noop"))
    loadbalancer_topology: str = opt(
        "SINGLE", "Default topology of new load balancers.", choices=("SINGLE", "ACTIVE_STANDBY"))
    poll_interval: float = opt(
        0.5, "Seconds between looks for new operations when no in-process signal arrives.",
        minimum=0.01)
    step_max_retries: int = opt(
        5, "Times a step that failed temporarily is tried again before its flow reverts.",
        minimum=0)
    step_retry_max_delay: float = opt(10.0, "Longest wait between two tries of a step.",
                                      minimum=0.0)
    graceful_shutdown_timeout: float = opt(
        30.0, "On SIGTERM, seconds to let running operations finish before leaving them to "
        "another worker.", minimum=0.0)


@dataclass
class TaskFlowSection:
    jobboard_expiration_time: float = opt(
        30.0, "Lease of a claimed operation in seconds: a worker renews it while working; if "
        "it dies, another worker resumes the operation once the lease runs out.", minimum=1.0)


@dataclass
class NetnsSection:
    mgmt_bridge: str = opt("st-mgmt", "Bridge of the management network (lb-mgmt-net) that "
                           "connects the controller to the amphora agents.")
    mgmt_cidr: str = opt("10.211.0.0/22", "Network of lb-mgmt-net; the host takes its first "
                         "address. Statera refuses a CIDR that overlaps the host's networks.")
    agent_python: str = opt("", "Python that runs the amphora agent. Empty: Statera's own.")
    nft_table: str = opt("statera", "nftables table (inet) holding Statera's isolation rules; "
                         "Statera replaces this table and touches no other.")


@dataclass
class HouseKeepingSection:
    cleanup_interval: float = opt(
        30.0, "Seconds between purges of expired DELETED rows and sweeps of leftovers.",
        minimum=0.1)
    amphora_expiry_age: int = opt(
        604800, "DELETED amphora rows older than this (s) are purged.", minimum=0)
    load_balancer_expiry_age: int = opt(
        604800, "DELETED load balancer rows (and finished operations) older than this (s) "
        "are purged.", minimum=0)
    cert_interval: float = opt(
        3600.0, "Seconds between checks for amphora server certificates to rotate.",
        minimum=0.1)
    cert_expiry_buffer: int = opt(
        1209600, "Rotate an amphora's server certificate when it expires within this (s).",
        minimum=0)
    spare_check_interval: float = opt(
        30.0, "Seconds between checks of the spare amphora pool.", minimum=0.1)
    spare_amphora_pool_size: int = opt(
        0, "Spare amphorae kept built and ready (their agent running) for creates and "
        "failovers of the default topology. 0: none.", minimum=0, maximum=100)
    orphan_grace: float = opt(
        300.0, "Amphorae building with no load balancer for longer than this (s), left by a "
        "crashed spare build, are removed.", minimum=1.0)


@dataclass
class HealthManagerSection:
    # Upstream: heartbeat every 10 s, stale after 60 s, checked every 3 s, so a dead amphora
    # is noticed after about a minute. Statera's target for SINGLE is <= 5 s: a heartbeat every
    # second, stale after 3 s (two lost datagrams in a row never fail an amphora over), checked
    # every second: at worst 3 s + 1 s after the last heartbeat, plus one batch interval.
    bind_ip: str = opt("", "Address the health manager receives heartbeats on. Empty: the "
                       "management bridge's host address with namespace amphorae (the only "
                       "address they can reach), else 127.0.0.1.")
    bind_port: int = opt(5555, "UDP port of the health manager.", minimum=1, maximum=65535)
    controller_ip_port_list: list[str] = opt(
        [], "Where amphorae send heartbeats, as IP:port pairs (round robin). Empty: "
        "bind_ip:bind_port.")
    heartbeat_interval: int = opt(1, "Seconds between two heartbeats of an amphora.",
                                  minimum=1, maximum=3600)
    heartbeat_timeout: float = opt(3.0, "An amphora silent this long (s) is failed over.",
                                   minimum=0.5)
    health_check_interval: float = opt(1.0, "Seconds between two looks for silent amphorae.",
                                       minimum=0.1)
    failover_threshold: int = opt(
        10, "Circuit breaker: when this many amphorae are silent at once (or every monitored "
        "amphora, two or more, is), the controller's network is the likelier culprit: none "
        "is failed over, they are marked FAILOVER_STOPPED until heartbeats return. 0: off.",
        minimum=0)
    heartbeat_key: str = opt(
        "", "Key heartbeats are signed with (the master key in per_amphora mode). Empty: "
        "the heartbeat.key file of the PKI directory, created on first start.", secret=True)
    heartbeat_mode: str = opt(
        "per_amphora", "per_amphora: each amphora signs with its own key derived from "
        "heartbeat_key and the receiver refuses replays. upstream: one shared key, upstream's "
        "exact format (for upstream amphora images).", choices=("per_amphora", "upstream"))
    replay_window: float = opt(
        5.0, "per_amphora mode: heartbeats whose send time is further than this (s) from the "
        "health manager's clock are refused.", minimum=0.1)
    stats_update_interval: float = opt(
        0.5, "Seconds between two batches of heartbeat writes (health, statuses, "
        "statistics): one transaction per batch.", minimum=0.05)
    sock_rlimit: int = opt(16777216, "Receive buffer of the heartbeat socket (bytes): about "
                           "three seconds of 5,000 heartbeats/s, so a slow batch or a busy "
                           "host drops nothing; 0: the system default.", minimum=0)


@dataclass
class CertificatesSection:
    storage_path: str = opt("", "Directory of the control plane's PKI (two CAs, the "
                            "controller's client certificate, the heartbeat key). Empty: "
                            "<state_path>/pki, created on first start.")
    cert_validity_time: int = opt(2592000, "Validity of amphora server certificates (s).",
                                  minimum=3600)
    secrets_key_file: str = opt("", "Key file (32 random bytes in hex, mode 0600) of the "
                                "tenant secret store's encryption at rest. Empty: "
                                "<storage_path>/secrets.key, created on first start.")


@dataclass
class NoopDriversSection:
    delay: float = opt(0.0, "Seconds each noop driver call takes, to imitate real latency.",
                       minimum=0.0, maximum=60.0)
    call_log: str = opt("", "File to append each noop driver call to as a JSON line.")


@dataclass
class QuotasSection:
    default_load_balancer_quota: int = opt(-1, "Load balancers per project (-1: unlimited).",
                                           minimum=-1)
    default_listener_quota: int = opt(-1, "Listeners per project.", minimum=-1)
    default_member_quota: int = opt(-1, "Members per project.", minimum=-1)
    default_pool_quota: int = opt(-1, "Pools per project.", minimum=-1)
    default_health_monitor_quota: int = opt(-1, "Health monitors per project.", minimum=-1)
    default_l7policy_quota: int = opt(-1, "L7 policies per project.", minimum=-1)
    default_l7rule_quota: int = opt(-1, "L7 rules per project.", minimum=-1)


@dataclass
class NetworkingSection:
    allow_vip_network_id: bool = opt(True, "Allow vip_network_id on create.")
    allow_vip_subnet_id: bool = opt(True, "Allow vip_subnet_id on create.")
    allow_vip_port_id: bool = opt(True, "Allow vip_port_id on create.")
    valid_vip_networks: list[str] = opt([], "If set, VIPs may only be on these network ids.")
    denylist_vip_networks: list[str] = opt([], "VIPs may never be on these network ids.")
    reserved_ips: list[str] = opt(["169.254.169.254"], "Addresses no VIP or member may use.")


@dataclass
class HaproxyAmphoraSection:
    timeout_client_data: int = opt(50000, "Default listener client inactivity timeout (ms).",
                                   minimum=0)
    timeout_member_connect: int = opt(5000, "Default member connect timeout (ms).", minimum=0)
    timeout_member_data: int = opt(50000, "Default member inactivity timeout (ms).", minimum=0)
    timeout_tcp_inspect: int = opt(0, "Default time to wait for TCP inspection (ms).", minimum=0)
    default_connection_limit: int = opt(50000, "Connection limit of an unlimited listener.",
                                        minimum=1)


@dataclass
class KeepalivedVrrpSection:
    """VRRP of ACTIVE_STANDBY pairs (keepalived in each amphora's tenant namespace)."""

    vrrp_version: int = opt(
        3, "VRRP version: 3 allows sub-second adverts (and has no authentication); 2 uses "
        "whole-second adverts and a per load balancer password, as upstream.", minimum=2,
        maximum=3)
    vrrp_advert_int: float = opt(
        0.2, "Seconds between VRRP adverts (VRRPv3: 0.01-40.95 in steps of 0.01; VRRPv2: "
        "whole seconds). A standby takes over about 3.5 adverts after the MASTER falls "
        "silent; upstream's default is 1.", minimum=0.01, maximum=255)
    vrrp_check_interval: int = opt(
        1, "Seconds between runs of the check that haproxy is alive (whole seconds, "
        "keepalived's limit).", minimum=1, maximum=3600)
    vrrp_fail_count: int = opt(2, "Failed checks before the amphora gives up the VIP.",
                               minimum=1, maximum=100)
    vrrp_success_count: int = opt(2, "Passed checks before it may hold the VIP again.",
                                  minimum=1, maximum=100)
    vrrp_garp_refresh_interval: int = opt(
        5, "Seconds between gratuitous ARP refreshes while MASTER (0: none).", minimum=0,
        maximum=86400)
    vrrp_garp_refresh_count: int = opt(2, "Gratuitous ARPs sent at each refresh.", minimum=1,
                                       maximum=100)


@dataclass(frozen=True)
class TenantNetwork:
    """A tenant network declared in a ``[network:NAME]`` section."""

    name: str
    id: str
    subnet_id: str
    subnet_name: str
    cidr: str
    gateway_ip: str | None
    allocation_start: str
    allocation_end: str
    bridge: str
    mtu: int
    project_id: str


@dataclass
class Settings:
    default: DefaultSection = field(default_factory=DefaultSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    api_settings: ApiSettingsSection = field(default_factory=ApiSettingsSection)
    controller_worker: ControllerWorkerSection = field(default_factory=ControllerWorkerSection)
    task_flow: TaskFlowSection = field(default_factory=TaskFlowSection)
    noop_drivers: NoopDriversSection = field(default_factory=NoopDriversSection)
    netns: NetnsSection = field(default_factory=NetnsSection)
    certificates: CertificatesSection = field(default_factory=CertificatesSection)
    health_manager: HealthManagerSection = field(default_factory=HealthManagerSection)
    house_keeping: HouseKeepingSection = field(default_factory=HouseKeepingSection)
    quotas: QuotasSection = field(default_factory=QuotasSection)
    networking: NetworkingSection = field(default_factory=NetworkingSection)
    haproxy_amphora: HaproxyAmphoraSection = field(default_factory=HaproxyAmphoraSection)
    keepalived_vrrp: KeepalivedVrrpSection = field(default_factory=KeepalivedVrrpSection)
    networks: list[TenantNetwork] = field(default_factory=list)
    source: str | None = None

    @property
    def pki_path(self) -> Path:
        return Path(self.certificates.storage_path or Path(self.default.state_path) / "pki")

    @property
    def database_url(self) -> str:
        if self.database.connection:
            return self.database.connection
        return f"sqlite:///{Path(self.default.state_path) / 'statera.db'}"


# INI section name -> attribute of Settings.
SECTIONS: dict[str, str] = {
    "DEFAULT": "default",
    "database": "database",
    "api_settings": "api_settings",
    "controller_worker": "controller_worker",
    "task_flow": "task_flow",
    "noop_drivers": "noop_drivers",
    "netns": "netns",
    "certificates": "certificates",
    "health_manager": "health_manager",
    "house_keeping": "house_keeping",
    "quotas": "quotas",
    "networking": "networking",
    "haproxy_amphora": "haproxy_amphora",
    "keepalived_vrrp": "keepalived_vrrp",
}

DEFAULT_NETWORKS = """\
[network:public]
cidr = 10.210.0.0/24
"""

_NETWORK_NAMESPACE = uuid.UUID("5d7c8f8e-8a8f-4f59-9f3b-0b6c7a1f2e10")


def _network_from_section(name: str, values: Mapping[str, str]) -> TenantNetwork:
    where = f"[network:{name}]"
    known = {"id", "subnet_id", "subnet_name", "cidr", "gateway_ip", "allocation_pool",
             "bridge", "mtu", "project_id"}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}.")
    if "cidr" not in values:
        raise ConfigError(f"{where}: cidr is required.")
    try:
        net = ipaddress.ip_network(values["cidr"].strip(), strict=True)
    except ValueError as exc:
        raise ConfigError(f"{where} cidr: {exc}.") from None
    hosts = list(net.hosts()) if net.num_addresses <= 65536 else None
    if hosts is not None and len(hosts) < 3:
        raise ConfigError(f"{where} cidr: {net} has too few addresses for a gateway and VIPs.")
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.network_address + min(
        net.num_addresses - 1, 65535)
    gateway_raw = values.get("gateway_ip", str(first)).strip()
    gateway = gateway_raw or None
    if gateway is not None:
        try:
            if ipaddress.ip_address(gateway) not in net:
                raise ConfigError(f"{where} gateway_ip: {gateway} is outside {net}.")
        except ValueError:
            raise ConfigError(f"{where} gateway_ip: {gateway!r} is not an IP address.") from None
    pool = values.get("allocation_pool", "").strip()
    if pool:
        start_s, sep, end_s = pool.partition("-")
        try:
            start, end = ipaddress.ip_address(start_s.strip()), ipaddress.ip_address(end_s.strip())
        except ValueError:
            raise ConfigError(f"{where} allocation_pool: expected FIRST-LAST, got {pool!r}.") \
                from None
        if not sep or start not in net or end not in net or int(start) > int(end):
            raise ConfigError(f"{where} allocation_pool: {pool!r} must be FIRST-LAST inside {net}.")
    else:
        start = first + 1 if gateway is not None and ipaddress.ip_address(gateway) == first \
            else first
        end = last
    mtu_raw = values.get("mtu", "1500").strip()
    if not mtu_raw.isdigit() or not 576 <= int(mtu_raw) <= 9216:
        raise ConfigError(f"{where} mtu: {mtu_raw!r} must be a number from 576 to 9216.")
    bridge = values.get("bridge", f"st-{name}"[:15]).strip()
    if not bridge or len(bridge) > 15 or not all(c.isalnum() or c in "-_." for c in bridge):
        raise ConfigError(f"{where} bridge: {bridge!r} must be 1-15 letters, digits, - _ or ..")
    net_id = values.get("id", str(uuid.uuid5(_NETWORK_NAMESPACE, "network:" + name))).strip()
    subnet_id = values.get("subnet_id",
                           str(uuid.uuid5(_NETWORK_NAMESPACE, "subnet:" + name))).strip()
    return TenantNetwork(
        name=name, id=net_id, subnet_id=subnet_id,
        subnet_name=values.get("subnet_name", f"{name}-subnet").strip(),
        cidr=str(net), gateway_ip=gateway, allocation_start=str(start), allocation_end=str(end),
        bridge=bridge, mtu=int(mtu_raw), project_id=values.get("project_id", "").strip(),
    )


def _apply(section_obj: Any, section: str, values: Mapping[str, str], origin: str) -> None:
    fields = {f.name: (f, tp) for f, tp in section_fields(type(section_obj))}
    for name, raw in values.items():
        if name not in fields:
            raise ConfigError(f"[{section}] {name}: unknown option ({origin}).")
        f, tp = fields[name]
        setattr(section_obj, name, parse_value(section, name, raw, tp, dict(f.metadata)))


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None,
                  *, with_default_networks: bool = True) -> Settings:
    """Build Settings from defaults, an optional INI file and the environment."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist.")
        try:
            parser.read(p)
        except configparser.Error as exc:
            raise ConfigError(f"Config file {p}: {exc}") from None
        settings.source = str(p)
    if not any(s.startswith("network:") for s in parser.sections()) and with_default_networks:
        parser.read_string(DEFAULT_NETWORKS)
    for section in parser.sections():
        if section.startswith("network:"):
            continue
        if section not in SECTIONS:
            raise ConfigError(f"[{section}]: unknown section in {path}.")
        _apply(getattr(settings, SECTIONS[section]), section, dict(parser[section]), str(path))
    for key, raw in environ.items():
        if not key.startswith("STATERA_") or "__" not in key or key == "STATERA_CONFIG":
            continue
        section_key, _, option = key[len("STATERA_"):].partition("__")
        found = next((s for s in SECTIONS if s.lower() == section_key.lower()), None)
        if found is None:
            raise ConfigError(f"{key}: no section {section_key.lower()!r}.")
        _apply(getattr(settings, SECTIONS[found]), found, {option.lower(): raw}, key)
    networks = [_network_from_section(s.partition(":")[2], dict(parser[s]))
                for s in parser.sections() if s.startswith("network:")]
    _check_networks(networks)
    settings.networks = networks
    _check_cross(settings)
    return settings


def _check_networks(networks: list[TenantNetwork]) -> None:
    seen: dict[str, str] = {}
    for net in networks:
        for key in (net.name, net.id, net.subnet_id, net.subnet_name, "bridge:" + net.bridge):
            if key in seen:
                raise ConfigError(f"[network:{net.name}] reuses {key!r} of [network:{seen[key]}].")
            seen[key] = net.name
    for i, a in enumerate(networks):
        for b in networks[i + 1:]:
            if ipaddress.ip_network(a.cidr).overlaps(ipaddress.ip_network(b.cidr)):
                raise ConfigError(f"[network:{a.name}] and [network:{b.name}] overlap.")


def _check_cross(settings: Settings) -> None:
    api = settings.api_settings
    if api.default_provider_driver not in api.enabled_provider_drivers:
        raise ConfigError(
            f"[api_settings] default_provider_driver: {api.default_provider_driver!r} is not "
            "in enabled_provider_drivers.")
    _check_health_manager(settings.health_manager)
    _check_keepalived(settings.keepalived_vrrp)
    url = settings.database_url
    if url.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "mysql", "mariadb", "postgresql"):
        raise ConfigError("[database] connection: only sqlite, mysql/mariadb and postgresql "
                          "URLs are supported.")


def _check_keepalived(k: KeepalivedVrrpSection) -> None:
    advert = k.vrrp_advert_int
    if k.vrrp_version == 2 and (advert != int(advert) or advert < 1):
        raise ConfigError("[keepalived_vrrp] vrrp_advert_int: VRRPv2 adverts are whole "
                          "seconds (1-255); use vrrp_version = 3 for sub-second ones.")
    if k.vrrp_version == 3 and (abs(advert * 100 - round(advert * 100)) > 1e-6
                                or advert > 40.95):
        raise ConfigError("[keepalived_vrrp] vrrp_advert_int: VRRPv3 adverts are 0.01 to "
                          "40.95 seconds in steps of 0.01.")


# Keys that have shipped in samples and guides: a deployment using one has no secret at all.
WEAK_HEARTBEAT_KEYS = frozenset({"insecure", "insecure-key-do-not-use-this-key", "changeme",
                                 "secret", "password", "heartbeat_key"})


def _check_health_manager(hm: HealthManagerSection) -> None:
    if hm.heartbeat_timeout <= hm.heartbeat_interval:
        raise ConfigError("[health_manager] heartbeat_timeout must be longer than "
                          "heartbeat_interval, or every amphora looks silent between beats.")
    key = hm.heartbeat_key
    if key and (len(key) < 16 or key.lower() in WEAK_HEARTBEAT_KEYS):
        raise ConfigError("[health_manager] heartbeat_key: refused, it is a well-known or "
                          "short (< 16 characters) key; leave it empty to use a generated one.")
    for entry in hm.controller_ip_port_list:
        host, _, port = entry.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            ok = port.isdigit() and 0 < int(port) < 65536
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"[health_manager] controller_ip_port_list: {entry!r} is not "
                              "an IP:port pair.")


def sample_config() -> str:
    """A commented config file with every option at its default."""
    from statera.config.options import format_value

    out = ["# Statera configuration. Section and option names follow octavia.conf where the",
           "# concept exists. Any option can also be set in the environment as",
           "# STATERA_<SECTION>__<OPTION>, e.g. STATERA_DATABASE__CONNECTION.", ""]
    defaults = Settings()
    for section, attr in SECTIONS.items():
        out.append(f"[{section}]")
        obj = getattr(defaults, attr)
        for f, _tp in section_fields(type(obj)):
            meta = f.metadata
            for line in _wrap(meta["help"]):
                out.append(f"# {line}")
            if meta.get("choices"):
                out.append(f"# Allowed: {', '.join(meta['choices'])}")
            value = "" if f.name == "host" else format_value(getattr(obj, f.name))
            out.append(f"#{f.name} = {value}")
        out.append("")
    out += [
        "# Tenant networks, one section each. Statera serves them read-only in Neutron's",
        "# shape at /v2.0/networks and /v2.0/subnets, and allocates VIPs from them.",
        "# Options: cidr (required), gateway_ip, allocation_pool = FIRST-LAST, bridge, mtu,",
        "# id, subnet_id, subnet_name (default <name>-subnet), project_id (empty: shared).",
        "# Without any [network:...] section Statera declares this one:",
        DEFAULT_NETWORKS.strip(),
        "",
    ]
    return "\n".join(out)


def _wrap(text: str, width: int = 88) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def as_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)
