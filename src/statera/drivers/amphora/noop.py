"""The noop amphora driver: records calls; configs are accepted as is."""

from __future__ import annotations

from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.base import ListenerStats, VrrpSpec
from statera.drivers.network.base import PluggedInterface
from statera.drivers.noop_log import CallLog


class NoopAmphoraDriver:
    def __init__(self, calls: CallLog) -> None:
        self.calls = calls

    def wait_ready(self, amphora: Amphora, timeout: float) -> None:
        self.calls.record("amphora", "wait_ready", amphora_id=amphora.id)

    def post_vip_plug(self, lb: LoadBalancer, amphora: Amphora,
                      iface: PluggedInterface) -> None:
        self.calls.record("amphora", "post_vip_plug", lb_id=lb.id, amphora_id=amphora.id)

    def post_network_plug(self, amphora: Amphora, iface: PluggedInterface) -> None:
        self.calls.record("amphora", "post_network_plug", amphora_id=amphora.id,
                          network_id=iface.network_id)

    def apply_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        self.calls.record(
            "amphora", "apply_config", lb_id=lb.id, amphora_id=amphora.id,
            listeners=[li.id for li in lb.listeners],
            members=sorted(mb.id for p in lb.pools for mb in p.members))

    def remove_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        self.calls.record("amphora", "remove_config", lb_id=lb.id, amphora_id=amphora.id)

    def rotate_certificate(self, amphora: Amphora, server_pem: bytes) -> None:
        self.calls.record("amphora", "rotate_certificate", amphora_id=amphora.id)

    def update_agent_config(self, amphora: Amphora, agent_config: str) -> None:
        self.calls.record("amphora", "update_agent_config", amphora_id=amphora.id)

    def get_stats(self, lb: LoadBalancer, amphora: Amphora) -> list[ListenerStats]:
        self.calls.record("amphora", "get_stats", lb_id=lb.id, amphora_id=amphora.id)
        return [ListenerStats(listener_id=li.id) for li in lb.listeners]

    def get_interface(self, amphora: Amphora, ip_address: str) -> str:
        self.calls.record("amphora", "get_interface", amphora_id=amphora.id)
        return "eth1"

    def update_vrrp_config(self, lb: LoadBalancer, amphora: Amphora, vrrp: VrrpSpec) -> None:
        self.calls.record("amphora", "update_vrrp_config", lb_id=lb.id, amphora_id=amphora.id,
                          priority=amphora.vrrp_priority, vrrp_ip=amphora.vrrp_ip,
                          peers=sorted(a.vrrp_ip or "" for a in lb.amphorae
                                       if a.id != amphora.id))

    def start_vrrp(self, amphora: Amphora) -> None:
        self.calls.record("amphora", "start_vrrp", amphora_id=amphora.id)

    def reload_vrrp(self, amphora: Amphora) -> None:
        self.calls.record("amphora", "reload_vrrp", amphora_id=amphora.id)

    def stop_vrrp(self, amphora: Amphora) -> None:
        self.calls.record("amphora", "stop_vrrp", amphora_id=amphora.id)
