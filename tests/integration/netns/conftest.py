"""Fixtures for tests that make real namespaces and bridges. Everything they create has a
unique name and is removed afterwards, even when the test fails."""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
from collections.abc import Iterator

import pytest

from statera.drivers.netns.host import BridgeSpec, ensure_bridge, foreign_networks, remove_bridge
from statera.drivers.netns.ip import Ip


def _need_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            raise AssertionError("namespace tests need root and iproute2 in CI")
        pytest.skip("namespace tests need root and iproute2")


@pytest.fixture
def ip() -> Ip:
    _need_root()
    return Ip()


def free_test_cidr(ip: Ip) -> ipaddress.IPv4Network:
    """A /24 in 10.240.0.0/12 that nothing on this host uses."""
    used = foreign_networks(ip)
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{random.randint(240, 254)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used if u.version == 4 and u.prefixlen > 0):
            return net  # type: ignore[return-value]
    raise AssertionError("no free test CIDR")


@pytest.fixture
def test_bridge(ip: Ip) -> Iterator[BridgeSpec]:
    net = free_test_cidr(ip)
    spec = BridgeSpec(name=f"st-t{secrets.token_hex(4)}", cidr=str(net),
                      host_address=str(next(net.hosts())))
    try:
        ensure_bridge(ip, spec)
        yield spec
    finally:
        remove_bridge(ip, spec.name)
