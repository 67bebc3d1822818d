"""The agent's side of the API 1.0 bodies: the same shapes as ``statera.wire.agent`` (the
controller's pydantic models), checked here with a few plain functions so the agent process
never loads pydantic.

The rules match the controller's models: addresses and networks must parse (and are
normalised), MACs are six colon-separated hex pairs (lower-cased), an MTU is 68-65535, unknown
fields are ignored. Types are strict: a string where a string belongs, an int (not a bool,
not a float) for the MTU. A bad body raises BadRequest naming the field and the rule, never
echoing the value. tests/unit/agent/test_bodies.py holds both sides to the same field sets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from statera.agent.errors import BadRequest
from statera.wire.agent_core import MAC_RE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Invalid(ValueError):
    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")


def _at(where: str, key: str | int) -> str:
    return f"{where}.{key}" if where else str(key)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, "must be a string")
    return value


def ip_address(value: Any, where: str = "ip") -> str:
    try:
        return str(ipaddress.ip_address(_str(value, where)))
    except ValueError:
        raise _Invalid(where, "not an IP address") from None


def _cidr(value: Any, where: str) -> str:
    try:
        return str(ipaddress.ip_network(_str(value, where), strict=False))
    except ValueError:
        raise _Invalid(where, "not an IP network") from None


def _mac(value: Any, where: str) -> str:
    if not MAC_RE.match(_str(value, where)):
        raise _Invalid(where, "not a MAC address")
    return str(value).lower()


def _mtu(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(where, "must be an integer")
    if not 68 <= value <= 65535:
        raise _Invalid(where, "must be between 68 and 65535")
    return value


def _optional_ip(value: Any, where: str) -> str | None:
    return None if value is None else ip_address(value, where)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where or "body", "must be an object")
    return value


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Invalid(_at(where, key), "field required")
    return obj[key]


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(where, "must be a list")
    if len(value) > 256:
        raise _Invalid(where, "too many entries")
    return value


@dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str

    @classmethod
    def parse(cls, raw: Any, where: str) -> HostRoute:
        obj = _object(raw, where)
        return cls(destination=_cidr(_required(obj, "destination", where),
                                     _at(where, "destination")),
                   nexthop=ip_address(_required(obj, "nexthop", where), _at(where, "nexthop")))


def _routes(obj: dict[str, Any], where: str) -> tuple[HostRoute, ...]:
    at = _at(where, "host_routes")
    return tuple(HostRoute.parse(r, _at(at, i))
                 for i, r in enumerate(_list(obj.get("host_routes"), at)))


@dataclass(frozen=True)
class AdditionalVip:
    ip_address: str
    subnet_cidr: str
    gateway: str | None = None
    host_routes: tuple[HostRoute, ...] = ()

    @classmethod
    def parse(cls, raw: Any, where: str) -> AdditionalVip:
        obj = _object(raw, where)
        return cls(ip_address=ip_address(_required(obj, "ip_address", where),
                                         _at(where, "ip_address")),
                   subnet_cidr=_cidr(_required(obj, "subnet_cidr", where),
                                     _at(where, "subnet_cidr")),
                   gateway=_optional_ip(obj.get("gateway"), _at(where, "gateway")),
                   host_routes=_routes(obj, where))


FixedIp = AdditionalVip  # the same four fields, in a plug/network body


@dataclass(frozen=True)
class PlugVip:
    """POST /plug/vip/{vip}"""

    subnet_cidr: str
    mac_address: str
    gateway: str | None = None
    vrrp_ip: str | None = None
    mtu: int | None = None
    host_routes: tuple[HostRoute, ...] = ()
    additional_vips: tuple[AdditionalVip, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> PlugVip:
        obj = _object(raw, "")
        return cls(
            subnet_cidr=_cidr(_required(obj, "subnet_cidr", ""), "subnet_cidr"),
            mac_address=_mac(_required(obj, "mac_address", ""), "mac_address"),
            gateway=_optional_ip(obj.get("gateway"), "gateway"),
            vrrp_ip=_optional_ip(obj.get("vrrp_ip"), "vrrp_ip"),
            mtu=_mtu(obj.get("mtu"), "mtu"),
            host_routes=_routes(obj, ""),
            additional_vips=tuple(
                AdditionalVip.parse(v, f"additional_vips.{i}")
                for i, v in enumerate(_list(obj.get("additional_vips"), "additional_vips"))))


@dataclass(frozen=True)
class PlugNetwork:
    """POST /plug/network"""

    mac_address: str
    fixed_ips: tuple[AdditionalVip, ...] = ()
    mtu: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> PlugNetwork:
        obj = _object(raw, "")
        return cls(
            mac_address=_mac(_required(obj, "mac_address", ""), "mac_address"),
            fixed_ips=tuple(FixedIp.parse(f, f"fixed_ips.{i}")
                            for i, f in enumerate(_list(obj.get("fixed_ips"), "fixed_ips"))),
            mtu=_mtu(obj.get("mtu"), "mtu"))


def parse_body(kind: type[PlugVip] | type[PlugNetwork], raw: Any) -> Any:
    """``kind.parse(raw)``, its error as a 400 answer."""
    try:
        return kind.parse(raw)
    except _Invalid as exc:
        raise BadRequest("Invalid request", str(exc)) from None


def parse_ip(value: str, message: str) -> str:
    """A path parameter that must be an IP address, normalised; 400 with `message` if not."""
    try:
        return ip_address(value)
    except _Invalid:
        raise BadRequest(message, "not an IP address") from None


@dataclass(frozen=True)
class FrontendStats:
    """GET /loadbalancer/{lb_id}/stats (a Statera extension of API 1.0): one HAProxy
    frontend's counters; the frontend is named after its listener id."""

    name: str
    bytes_in: int = 0
    bytes_out: int = 0
    active_connections: int = 0
    total_connections: int = 0
    request_errors: int = 0
    status: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "active_connections": self.active_connections,
                "total_connections": self.total_connections,
                "request_errors": self.request_errors, "status": self.status}
