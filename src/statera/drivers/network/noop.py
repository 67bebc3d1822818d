"""The noop network driver: records calls, plugs nothing."""

from __future__ import annotations

from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.network.base import PluggedInterface
from statera.drivers.noop_log import CallLog


class NoopNetworkDriver:
    def __init__(self, calls: CallLog) -> None:
        self.calls = calls

    def plug_vip(self, lb: LoadBalancer, amphora: Amphora) -> PluggedInterface:
        self.calls.record("network", "plug_vip", lb_id=lb.id, amphora_id=amphora.id)
        vip = lb.vip
        return PluggedInterface(network_id=(vip.network_id if vip else "") or "",
                                subnet_cidr="", ip_address=(vip.ip_address if vip else "") or "",
                                mac_address="fa:16:3e:00:00:00")

    def unplug_vip(self, lb: LoadBalancer, amphora: Amphora) -> None:
        self.calls.record("network", "unplug_vip", lb_id=lb.id, amphora_id=amphora.id)

    def plug_member_networks(self, lb: LoadBalancer, amphora: Amphora
                             ) -> list[PluggedInterface]:
        self.calls.record("network", "plug_member_networks", lb_id=lb.id,
                          amphora_id=amphora.id)
        return []

    def update_allowed_cidrs(self, lb: LoadBalancer, amphora: Amphora) -> None:
        self.calls.record("network", "update_allowed_cidrs", lb_id=lb.id, amphora_id=amphora.id)
