"""Our bridges keep their MAC address while ports come and go.

A Linux bridge created without an address takes the lowest MAC among its ports, and changes
it whenever a port with a lower one joins (or the lowest leaves). Every new amphora plugs a
veth with a random MAC into the management bridge, so the host's address there moved to a
new MAC now and then, while the amphorae kept the old one in their ARP caches: an agent that
had just talked to the host answered into the void until its neighbour entry expired. A
create that took a spare amphora sat for ~55 s in one agent call (the bench's stall) when
the next spare was plugged in at that moment.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from statera.drivers.netns.amphora_ns import (
    delete_namespace,
    ensure_namespace,
    plug_veth,
    unplug_veth,
)
from statera.drivers.netns.host import BridgeSpec, bridge_mac, ensure_bridge, remove_bridge
from statera.drivers.netns.ip import Ip
from statera.drivers.netns.ip import check as check_ip

from .conftest import free_test_cidr

LOWEST_MAC = "00:00:00:00:00:01"  # lower than any address a bridge could hold


def mac_of(name: str) -> str:
    return Path(f"/sys/class/net/{name}/address").read_text().strip()


@contextlib.contextmanager
def lowest_mac_port(ip: Ip, bridge: str, mac: str = LOWEST_MAC) -> Iterator[str]:
    """A veth on ``bridge`` with ``mac``, by default lower than the bridge's own."""
    host_end, peer = f"sv{secrets.token_hex(4)}l", f"sb{secrets.token_hex(4)}l"
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", peer)
        ip("link", "set", host_end, "address", mac)
        ip("link", "set", host_end, "master", bridge, "up")
        yield host_end
    finally:
        unplug_veth(ip, host_end)


def test_a_port_with_a_lower_mac_does_not_move_the_bridge(test_bridge: BridgeSpec,
                                                           ip: Ip) -> None:
    before = mac_of(test_bridge.name)
    with lowest_mac_port(ip, test_bridge.name):
        assert mac_of(test_bridge.name) == before
    assert mac_of(test_bridge.name) == before  # nor does the last port leaving


def test_a_bridge_made_before_is_pinned_to_the_address_it_has(ip: Ip) -> None:
    net = free_test_cidr(ip)
    spec = BridgeSpec(name=f"st-t{secrets.token_hex(4)}", cidr=str(net),
                      host_address=str(next(net.hosts())))
    try:
        ip("link", "add", spec.name, "type", "bridge")  # as a release before this fix did
        before = mac_of(spec.name)
        ensure_bridge(ip, spec)
        assert mac_of(spec.name) == before  # pinning it moves nothing
        with lowest_mac_port(ip, spec.name):
            assert mac_of(spec.name) == before
    finally:
        remove_bridge(ip, spec.name)


def test_a_bridge_left_without_an_address_gets_its_own(ip: Ip) -> None:
    net = free_test_cidr(ip)
    spec = BridgeSpec(name=f"st-t{secrets.token_hex(4)}", cidr=str(net),
                      host_address=str(next(net.hosts())))
    try:
        ip("link", "add", spec.name, "type", "bridge")
        with lowest_mac_port(ip, spec.name):
            pass  # its last port leaving leaves it 00:00:00:00:00:00
        assert mac_of(spec.name) == "00:00:00:00:00:00"
        ensure_bridge(ip, spec)
        assert mac_of(spec.name) == bridge_mac(spec.name)
    finally:
        remove_bridge(ip, spec.name)


# Inside the namespace: answer "hello", then answer "wait" once the flag file exists.
SERVER = """
import os, socket, sys, time
address, flag = sys.argv[1], sys.argv[2]
listener = socket.create_server((address, 9999))
print("listening", flush=True)
conn, _ = listener.accept()
rfile = conn.makefile("rb")
rfile.readline(); conn.sendall(b"hi\\n")
rfile.readline()
while not os.path.exists(flag):
    time.sleep(0.01)
conn.sendall(b"done\\n")
time.sleep(5)
"""


def test_a_conversation_survives_a_new_port(test_bridge: BridgeSpec, ip: Ip,
                                            tmp_path: Path) -> None:
    """The agent's case: the host asked, a port joined the bridge, the agent answers. (An
    unpinned bridge would move from the first port's MAC to the new port's; the answer, sent
    to the first port's MAC, arrives on another port and is dropped as not for the host.)"""
    net = test_bridge.cidr.rsplit(".", 1)[0]
    address = f"{net}.2"
    tag = secrets.token_hex(4)
    ns, host_end = f"statera-b{tag}", f"sb{tag}b"
    flag = tmp_path / "answer-now"
    server = None
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(lowest_mac_port(ip, test_bridge.name, "00:00:00:00:00:05"))
        ensure_namespace(ip, ns)
        plug_veth(ip, host_end, test_bridge.name, ns, "eth0", "fa:00:00:00:00:02", 1500)
        ip("link", "set", host_end, "address", "fe:00:00:00:00:02")
        ip.in_ns(ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip.in_ns(ns, "link", "set", "eth0", "up")
        argv = ["netns", "exec", ns, sys.executable, "-c", SERVER, address, str(flag)]
        check_ip(argv)
        server = subprocess.Popen(["ip", *argv], stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline() == b"listening\n"
        with socket.create_connection((address, 9999), timeout=5) as conn:
            rfile = conn.makefile("rb")
            conn.sendall(b"hello\n")
            assert rfile.readline() == b"hi\n"  # both ends know each other's MAC now
            conn.sendall(b"wait\n")
            time.sleep(0.1)  # acknowledged: the host has nothing more to send
            with lowest_mac_port(ip, test_bridge.name):
                flag.touch()
                conn.settimeout(3)
                try:
                    answer = rfile.readline()
                except TimeoutError:
                    pytest.fail("the answer was lost: the host's MAC on the bridge changed")
        assert answer == b"done\n"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        unplug_veth(ip, host_end)
        delete_namespace(ip, ns)
        stack.close()
