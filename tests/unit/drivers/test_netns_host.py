"""Host bridges get a MAC address of their own (tests/integration/netns/test_bridge_address.py
shows why, on real bridges); here the address and the commands, dry-run."""

from __future__ import annotations

from statera.drivers.netns.host import BridgeSpec, bridge_mac, ensure_bridge
from statera.drivers.netns.ip import Ip, check


def test_bridge_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = bridge_mac("st-mgmt")
    first = int(mac.split(":")[0], 16)
    assert mac == bridge_mac("st-mgmt") != bridge_mac("st-mgmt2")
    assert len(mac.split(":")) == 6
    assert first & 0x01 == 0  # unicast
    assert first & 0x02      # locally administered
    assert not mac.startswith("fa:")  # never an amphora interface's


def test_an_existing_bridge_without_an_address_of_its_own_is_pinned() -> None:
    ip = Ip(dry_run=True)  # every link "exists" and shows nothing
    ensure_bridge(ip, BridgeSpec("st-tdryrun0", "10.250.0.0/24", "10.250.0.1"))
    assert ["link", "set", "st-tdryrun0", "address", bridge_mac("st-tdryrun0")] in ip.ran
    for args in ip.ran:
        check(args)
