"""Amphora drivers talk to the agent inside an amphora: push the load balancer's whole
config, reload, remove it, rotate certificates, read live statistics. The real one is an
httpx client with mTLS (agent API 1.0); its transport is one method, so tests use a mock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.network.base import PluggedInterface


@dataclass(frozen=True)
class ListenerStats:
    listener_id: str
    bytes_in: int = 0
    bytes_out: int = 0
    active_connections: int = 0
    total_connections: int = 0
    request_errors: int = 0


@dataclass(frozen=True)
class VrrpSpec:
    """What an amphora's keepalived.conf needs besides the load balancer and the amphora:
    the load balancer's VRRP group (version, advert interval, VRRPv2 password), the checks
    and gratuitous ARPs from ``[keepalived_vrrp]``, and the VIP's subnet for the routes
    that follow the VIP."""

    version: int = 3
    advert_int: float = 0.2
    auth_pass: str | None = field(default=None, repr=False)
    check_interval: int = 1
    fail_count: int = 2
    success_count: int = 2
    garp_refresh_interval: int = 5
    garp_refresh_count: int = 2
    vip_cidr: str | None = None
    vip_gateway: str | None = None


class AmphoraDriver(Protocol):
    def wait_ready(self, amphora: Amphora, timeout: float) -> None:
        """Return once the agent answers; raise TemporaryFailure if it does not yet."""
        ...

    def post_vip_plug(self, lb: LoadBalancer, amphora: Amphora,
                      iface: PluggedInterface) -> None:
        """Configure the VIP on the interface the network driver plugged (agent plug vip)."""
        ...

    def post_network_plug(self, amphora: Amphora, iface: PluggedInterface) -> None:
        """Configure a member-network interface the network driver plugged."""
        ...

    def apply_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        """Render and upload the whole load balancer's config (haproxy.cfg, certificates,
        keepalived.conf) to the amphora and reload it without dropping connections.
        Objects in PENDING_DELETE are left out. Idempotent."""
        ...

    def remove_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        """Stop serving the load balancer on this amphora; no error if already gone."""
        ...

    def rotate_certificate(self, amphora: Amphora, server_pem: bytes) -> None:
        ...

    def update_agent_config(self, amphora: Amphora, agent_config: str) -> None:
        ...

    def get_stats(self, lb: LoadBalancer, amphora: Amphora) -> list[ListenerStats]:
        ...

    # ---- VRRP (ACTIVE_STANDBY) -----------------------------------------------------------

    def get_interface(self, amphora: Amphora, ip_address: str) -> str:
        """The name of the amphora's interface holding ``ip_address`` (its VRRP interface)."""
        ...

    def update_vrrp_config(self, lb: LoadBalancer, amphora: Amphora, vrrp: VrrpSpec) -> None:
        """Render and upload the amphora's keepalived.conf (it is not applied until
        start_vrrp or reload_vrrp)."""
        ...

    def start_vrrp(self, amphora: Amphora) -> None:
        """Start keepalived; nothing if it runs."""
        ...

    def reload_vrrp(self, amphora: Amphora) -> None:
        """Make keepalived apply its uploaded config (start it if it is not running)."""
        ...

    def stop_vrrp(self, amphora: Amphora) -> None:
        """Stop keepalived gracefully: a MASTER hands the VIP to its peer at once. For an
        amphora that may be dead: one try, no retries."""
        ...
