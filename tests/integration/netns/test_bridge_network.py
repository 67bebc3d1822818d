"""The bridge network driver with real namespaces: VIP and member-network veths land on the
right bridges with stable MACs, and go away with the amphora."""

from __future__ import annotations

import uuid
from pathlib import Path

from statera.config.settings import TenantNetwork
from statera.domain import model as d
from statera.drivers.compute.base import AmphoraBuild
from statera.drivers.compute.netns import NetnsComputeDriver
from statera.drivers.netns.amphora_ns import AmphoraNames
from statera.drivers.netns.host import BridgeSpec
from statera.drivers.netns.ip import Ip
from statera.drivers.network.bridge import BridgeNetworkDriver


def _tenant_network(bridge: BridgeSpec, name: str) -> TenantNetwork:
    return TenantNetwork(name=name, id=str(uuid.uuid4()), subnet_id=str(uuid.uuid4()),
                         subnet_name=f"{name}-subnet", cidr=bridge.cidr,
                         gateway_ip=bridge.host_address, allocation_start="x",
                         allocation_end="y", bridge=bridge.name, mtu=1500, project_id="")


def test_plug_vip_and_unplug(tmp_path: Path, test_bridge: BridgeSpec, ip: Ip) -> None:
    compute = NetnsComputeDriver(state_dir=tmp_path, mgmt_bridge=test_bridge.name,
                                 mgmt_cidr=test_bridge.cidr,
                                 mgmt_host_address=test_bridge.host_address,
                                 agent_command=lambda home: ["sleep", "300"], ip=ip)
    net = _tenant_network(test_bridge, "blue")
    driver = BridgeNetworkDriver([net], ip=ip)
    amp = d.Amphora(id=str(uuid.uuid4()), status="ALLOCATED")
    vip_address = str(list(__import__("ipaddress").ip_network(net.cidr).hosts())[9])
    lb = d.LoadBalancer(id=str(uuid.uuid4()), project_id="p", topology="SINGLE",
                        vip=d.Vip(ip_address=vip_address, subnet_id=net.subnet_id,
                                  network_id=net.id, port_id=None))
    names = AmphoraNames(amp.id)
    try:
        compute.build(AmphoraBuild(amphora_id=amp.id))
        iface = driver.plug_vip(lb, amp)
        assert driver.plug_vip(lb, amp) == iface  # idempotent
        assert iface.mac_address == names.mac(1) and iface.ip_address == vip_address
        (host_end,) = ip.json("link", "show", "dev", names.tenant_veth(1))
        assert host_end["master"] == test_bridge.name
        (inner,) = ip.json("-n", names.tenant_ns, "link", "show", "dev", "eth1")
        assert inner["address"] == names.mac(1)
        driver.unplug_vip(lb, amp)
        assert not ip.link_exists(names.tenant_veth(1))
    finally:
        compute.delete(amp.id)
    assert not ip.link_exists(names.tenant_veth(1))
