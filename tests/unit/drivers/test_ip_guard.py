"""The guard in front of every `ip` command refuses anything that could touch the host's own
networking (the suite never runs the refused commands: dry-run or check only)."""

from __future__ import annotations

import pytest

from statera.drivers.netns.ip import Ip, UnsafeNetworkCommand, check

ALLOWED = [
    ["netns", "add", "stm-0123456789"],
    ["netns", "del", "stt-0123456789"],
    ["-n", "stt-0123456789", "addr", "add", "10.210.0.5/24", "dev", "eth1"],
    ["-n", "stt-0123456789", "route", "add", "default", "via", "10.210.0.1"],
    ["link", "add", "sv0123456789", "type", "veth", "peer", "name", "eth0", "netns",
     "stm-0123456789"],
    ["link", "set", "sv0123456789", "master", "st-mgmt", "up"],
    ["link", "add", "st-public", "type", "bridge"],
    ["addr", "add", "10.210.0.1/24", "dev", "st-public"],
    ["link", "del", "st-public"],
    ["neigh", "replace", "10.210.0.5", "lladdr", "fa:01:23:45:67:00", "dev", "st-mgmt",
     "nud", "permanent"],
    ["neigh", "del", "10.210.0.5", "dev", "st-mgmt"],
    ["-n", "stm-0123456789", "neigh", "replace", "10.210.0.1", "lladdr", "02:00:00:00:00:01",
     "dev", "eth0", "nud", "permanent"],
    ["-j", "route", "show"],
    ["-j", "addr", "show"],
    ["netns", "list"],
]

REFUSED = [
    ["addr", "flush", "dev", "eth0"],
    ["-n", "stt-x", "addr", "flush", "dev", "eth1"],
    ["addr", "add", "10.0.0.1/24", "dev", "eth0"],
    ["addr", "del", "127.0.0.1/8", "dev", "lo"],
    ["route", "add", "default", "via", "10.0.0.1"],
    ["route", "del", "default"],
    ["rule", "add", "from", "all", "table", "5"],
    ["link", "set", "eth0", "down"],
    ["link", "set", "dev", "lo", "down"],
    ["link", "del", "docker0"],
    ["link", "set", "sv1", "master", "docker0"],
    ["link", "add", "sv1", "type", "veth", "peer", "name", "x", "netns", "somebody"],
    ["netns", "del", "cni-1234"],
    ["netns", "exec", "cni-1234", "ip", "link"],
    ["-n", "cni-1234", "link", "set", "eth0", "down"],
    ["-n", "../stm-x", "link", "show"],
    ["link", "add", "st-x; rm -rf /", "type", "bridge"],
    ["neigh", "replace", "10.0.0.1", "lladdr", "fa:01:23:45:67:00", "dev", "eth0", "nud",
     "permanent"],
    ["neigh", "del", "10.0.0.1", "dev", "docker0"],
    ["neigh", "add", "10.0.0.1", "lladdr", "fa:01:23:45:67:00", "nud", "permanent"],
    ["neigh", "del", "10.0.0.1", "dev"],
    ["neigh", "flush", "dev", "st-mgmt"],
]


@pytest.mark.parametrize("args", ALLOWED)
def test_allowed(args: list[str]) -> None:
    check(args)


@pytest.mark.parametrize("args", REFUSED)
def test_refused(args: list[str]) -> None:
    with pytest.raises(UnsafeNetworkCommand):
        check(args)


def test_dry_run_records_without_running() -> None:
    ip = Ip(dry_run=True)
    ip.in_ns("stt-0123456789", "link", "set", "lo", "up")
    assert ip.ran == [["-n", "stt-0123456789", "link", "set", "lo", "up"]]
    with pytest.raises(UnsafeNetworkCommand):
        ip.in_ns("default", "link", "set", "lo", "up")
