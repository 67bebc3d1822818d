"""The agent's light body checks against the controller's pydantic models (statera.wire.agent):
the same fields, the same values for what the controller sends, and refusals for what either
side refuses, without echoing the bad value."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from statera.agent import bodies
from statera.agent.errors import BadRequest
from statera.wire import agent as wire

PAIRS: list[tuple[type[BaseModel], type[Any]]] = [
    (wire.PlugVip, bodies.PlugVip), (wire.PlugNetwork, bodies.PlugNetwork),
    (wire.HostRoute, bodies.HostRoute), (wire.AdditionalVip, bodies.AdditionalVip),
    (wire.FixedIp, bodies.FixedIp), (wire.FrontendStats, bodies.FrontendStats)]


@pytest.mark.parametrize("model, light", PAIRS, ids=lambda c: c.__name__)
def test_both_sides_name_the_same_fields(model: type[BaseModel], light: type[Any]) -> None:
    assert set(model.model_fields) == {f.name for f in dataclasses.fields(light)}


def test_frontend_stats_serialise_as_the_controller_reads_them() -> None:
    row = bodies.FrontendStats(name="l1", bytes_in=1, bytes_out=2, active_connections=3,
                               total_connections=4, request_errors=5, status="OPEN")
    assert row.as_dict() == wire.FrontendStats(**row.as_dict()).model_dump()


def _sent(model: BaseModel) -> Any:
    """A body as the controller's driver puts it on the wire."""
    return json.loads(model.model_dump_json())


def test_what_the_controller_sends_reads_the_same_here() -> None:
    sent = wire.PlugVip(
        subnet_cidr="203.0.113.0/24", gateway="203.0.113.1", mac_address="FA:16:3E:00:00:01",
        vrrp_ip="203.0.113.9", mtu=1450,
        host_routes=[wire.HostRoute(destination="198.51.100.0/24", nexthop="203.0.113.2")],
        additional_vips=[wire.AdditionalVip(ip_address="2001:db8::5",
                                            subnet_cidr="2001:db8::/64")])
    got = bodies.PlugVip.parse(_sent(sent))
    assert got == bodies.PlugVip(
        subnet_cidr="203.0.113.0/24", gateway="203.0.113.1", mac_address="fa:16:3e:00:00:01",
        vrrp_ip="203.0.113.9", mtu=1450,
        host_routes=(bodies.HostRoute("198.51.100.0/24", "203.0.113.2"),),
        additional_vips=(bodies.AdditionalVip("2001:db8::5", "2001:db8::/64"),))
    net = wire.PlugNetwork(mac_address="fa:16:3e:00:00:02", mtu=None, fixed_ips=[
        wire.FixedIp(ip_address="10.0.0.5", subnet_cidr="10.0.0.0/24", gateway="10.0.0.1")])
    assert bodies.PlugNetwork.parse(_sent(net)) == bodies.PlugNetwork(
        mac_address="fa:16:3e:00:00:02",
        fixed_ips=(bodies.FixedIp("10.0.0.5", "10.0.0.0/24", "10.0.0.1"),))


def test_values_are_normalised_as_the_controller_does() -> None:
    raw = {"subnet_cidr": "203.0.113.7/24", "mac_address": "FA:16:3E:00:00:01",
           "gateway": "2001:DB8:0::1"}
    model = wire.PlugVip.model_validate(raw)
    light = bodies.PlugVip.parse(raw)
    assert (light.subnet_cidr, light.mac_address, light.gateway) == (
        model.subnet_cidr, model.mac_address, model.gateway) == (
        "203.0.113.0/24", "fa:16:3e:00:00:01", "2001:db8::1")


def test_unknown_fields_are_ignored_on_both_sides() -> None:
    raw = {"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01",
           "is_sriov": False, "vip_net_info": {"x": 1}}
    wire.PlugVip.model_validate(raw)
    assert bodies.PlugVip.parse(raw).mac_address == "fa:16:3e:00:00:01"


GOOD: dict[str, Any] = {"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01"}


@pytest.mark.parametrize("change, field", [
    ({"mac_address": "fa:16:3e:00:00:01; rm -rf /"}, "mac_address"),
    ({"mac_address": None}, "mac_address"),
    ({"subnet_cidr": "203.0.113.0/33"}, "subnet_cidr"),
    ({"subnet_cidr": 5}, "subnet_cidr"),
    ({"gateway": "-j ACCEPT"}, "gateway"),
    ({"vrrp_ip": "1.2.3"}, "vrrp_ip"),
    ({"mtu": 10}, "mtu"),
    ({"mtu": 70000}, "mtu"),
    ({"mtu": "x1500"}, "mtu"),
    ({"host_routes": [{"destination": "10.0.0.0/8"}]}, "host_routes.0.nexthop"),
    ({"host_routes": [{"destination": "10.0.0.0/8", "nexthop": "evil"}]},
     "host_routes.0.nexthop"),
    ({"host_routes": "10.0.0.0/8"}, "host_routes"),
    ({"additional_vips": [{"ip_address": "203.0.113.9"}]}, "additional_vips.0.subnet_cidr"),
])
def test_bad_values_are_refused_on_both_sides(change: dict[str, Any], field: str) -> None:
    raw = {**GOOD, **change}
    with pytest.raises(ValidationError):
        wire.PlugVip.model_validate(raw)
    with pytest.raises(BadRequest) as info:
        bodies.parse_body(bodies.PlugVip, raw)
    assert info.value.details.startswith(f"{field}: ")
    for value in change.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in info.value.details


@pytest.mark.parametrize("raw, field", [
    ({}, "mac_address"), ({"mac_address": "fa:16:3e:00:00:01", "fixed_ips": [7]},
                          "fixed_ips.0"),
    ([GOOD], "body"), ("text", "body")])
def test_missing_fields_and_wrong_shapes(raw: Any, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        bodies.parse_body(bodies.PlugNetwork, raw)
    assert info.value.details.startswith(f"{field}: ")


def test_the_agent_is_stricter_about_types_than_pydantic_lax_mode() -> None:
    # pydantic coerces 1500.0 and "1500" (not True); the agent takes none of them, and the
    # controller never sends them (its model holds an int, serialised as a JSON integer).
    for mtu in (True, 1500.0, "1500"):
        with pytest.raises(BadRequest, match="mtu: must be an integer"):
            bodies.parse_body(bodies.PlugVip, {**GOOD, "mtu": mtu})


def test_path_addresses() -> None:
    assert bodies.parse_ip("2001:DB8::1", "Invalid VIP") == "2001:db8::1"
    with pytest.raises(BadRequest, match="Invalid VIP"):
        bodies.parse_ip("-j", "Invalid VIP")
