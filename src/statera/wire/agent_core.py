"""The parts of amphora agent API 1.0 that need no pydantic: the version and port, the rules
for ids and certificate file names, and the agent's config file (``amphora-agent.conf``).

The agent process imports this module and not ``statera.wire.agent`` (whose pydantic bodies
it does not need), so it stays small and starts fast; ``statera.wire.agent`` re-exports
everything here, so the controller side imports one module.

The config file is an INI file in upstream's section and option names, plus Statera's
``[amphora_agent] haproxy_namespace``; ``render_agent_config`` and ``parse_agent_config`` are
its two directions.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
    # Statera: the key the amphora signs with, in its own 0600 file (hex), so it is never in
    # this file or on a command line; per_amphora or upstream (wire/heartbeat.py).
    heartbeat_key_file: str = ""
    heartbeat_mode: str = "per_amphora"
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
        if self.heartbeat_mode not in ("per_amphora", "upstream"):
            raise ValueError("[health_manager] heartbeat_mode must be per_amphora or upstream")
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
    ("health_manager", "heartbeat_key_file", "heartbeat_key_file"),
    ("health_manager", "heartbeat_mode", "heartbeat_mode"),
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
