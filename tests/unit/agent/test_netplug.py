"""Plugging rules that need no namespace; the real thing is in tests/integration/agent."""

from __future__ import annotations

import pytest

from statera.agent.bodies import AdditionalVip, PlugNetwork, PlugVip
from statera.agent.errors import BadRequest, Forbidden
from statera.agent.netplug import NetPlug, _address, _family

MAC = "fa:16:3e:00:00:01"


def test_without_a_namespace_nothing_runs() -> None:
    net = NetPlug("")
    with pytest.raises(Forbidden):
        net.plug_vip("203.0.113.5", PlugVip(subnet_cidr="203.0.113.0/24", mac_address=MAC))
    with pytest.raises(Forbidden):
        net.plug_network(PlugNetwork(mac_address=MAC))
    with pytest.raises(Forbidden):
        net.interface_of("203.0.113.5")
    assert net.counters() == {}


def test_addresses_must_lie_in_their_subnet_before_anything_runs() -> None:
    net = NetPlug("statera-t-never-created")
    with pytest.raises(BadRequest, match="not in"):
        net.plug_vip("198.51.100.5", PlugVip(subnet_cidr="203.0.113.0/24", mac_address=MAC))
    extra = AdditionalVip(ip_address="10.0.0.1", subnet_cidr="192.0.2.0/24")
    with pytest.raises(BadRequest, match="not in"):
        net.plug_vip("203.0.113.5", PlugVip(subnet_cidr="203.0.113.0/24", mac_address=MAC,
                                            additional_vips=(extra,)))


def test_helpers() -> None:
    assert _address("203.0.113.5", "203.0.113.0/24") == "203.0.113.5/24"
    assert _address("fd00::5", "fd00::/64") == "fd00::5/64"
    assert _family("fd00::5/64") == "-6"
    assert _family("203.0.113.5") == "-4"
