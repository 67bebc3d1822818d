"""The bridge network driver: an amphora's tenant namespace gets one veth on the bridge of
each tenant network it serves — the VIP network first (eth1), then member networks (eth2…).

Addresses are configured by the agent inside the amphora (plug vip / plug network), as in
upstream; this driver only makes the links. Nothing here routes, NATs or forwards anything
towards the host's uplink: the tenant namespace's only routes are its connected networks.
"""

from __future__ import annotations

import ipaddress
import logging

from statera.config.settings import TenantNetwork
from statera.domain.errors import StepFailed
from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.netns.amphora_ns import AmphoraNames, plug_veth, unplug_veth
from statera.drivers.netns.ip import Ip
from statera.drivers.network.base import PluggedInterface

LOG = logging.getLogger(__name__)
VIP_INDEX = 1
MAX_INTERFACES = 8


class BridgeNetworkDriver:
    def __init__(self, networks: list[TenantNetwork], ip: Ip | None = None) -> None:
        self.networks = {n.id: n for n in networks}
        self.ip = ip or Ip()

    def _network(self, network_id: str | None) -> TenantNetwork:
        net = self.networks.get(network_id or "")
        if net is None:
            raise StepFailed(f"network {network_id} is not one of the configured networks")
        return net

    def _plug(self, amphora: Amphora, net: TenantNetwork, index: int,
              ip_address: str) -> PluggedInterface:
        names = AmphoraNames(amphora.id)
        plug_veth(self.ip, names.tenant_veth(index), net.bridge, names.tenant_ns,
                  f"eth{index}", names.mac(index), net.mtu)
        return PluggedInterface(network_id=net.id, subnet_cidr=net.cidr,
                                ip_address=ip_address, mac_address=names.mac(index),
                                gateway=net.gateway_ip, mtu=net.mtu)

    def plug_vip(self, lb: LoadBalancer, amphora: Amphora) -> PluggedInterface:
        if lb.vip is None or not lb.vip.ip_address:
            raise StepFailed(f"load balancer {lb.id} has no VIP address")
        return self._plug(amphora, self._network(lb.vip.network_id), VIP_INDEX,
                          lb.vip.ip_address)

    def unplug_vip(self, lb: LoadBalancer, amphora: Amphora) -> None:
        unplug_veth(self.ip, AmphoraNames(amphora.id).tenant_veth(VIP_INDEX))

    def member_networks(self, lb: LoadBalancer) -> list[TenantNetwork]:
        """Networks other than the VIP's that members sit on (by subnet id, else address)."""
        vip_net = lb.vip.network_id if lb.vip else None
        wanted: dict[str, TenantNetwork] = {}
        for pool in lb.pools:
            for member in pool.members:
                net = None
                if member.subnet_id:
                    net = next((n for n in self.networks.values()
                                if n.subnet_id == member.subnet_id), None)
                if net is None:
                    net = _by_address(self.networks.values(), member.address)
                if net is not None and net.id != vip_net:
                    wanted[net.id] = net
        return sorted(wanted.values(), key=lambda n: n.name)

    def plug_member_networks(self, lb: LoadBalancer, amphora: Amphora
                             ) -> list[PluggedInterface]:
        """Links for member networks. Their addresses come from the caller's port records,
        so here the interface carries no address yet (the agent's plug network sets it)."""
        out = []
        nets = self.member_networks(lb)
        if len(nets) > MAX_INTERFACES - 2:
            raise StepFailed(f"load balancer {lb.id} spans too many member networks")
        names = AmphoraNames(amphora.id)
        for index, net in enumerate(nets, start=VIP_INDEX + 1):
            out.append(self._plug(amphora, net, index, ""))
        for index in range(VIP_INDEX + 1 + len(nets), MAX_INTERFACES):
            unplug_veth(self.ip, names.tenant_veth(index))
        return out

    def update_allowed_cidrs(self, lb: LoadBalancer, amphora: Amphora) -> None:
        """allowed_cidrs are enforced by HAProxy ACLs in the rendered config."""
        return None


def _by_address(networks: object, address: str) -> TenantNetwork | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for net in networks:  # type: ignore[attr-defined]
        if ip in ipaddress.ip_network(net.cidr):
            return net  # type: ignore[no-any-return]
    return None
