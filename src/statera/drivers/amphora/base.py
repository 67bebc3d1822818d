"""Amphora drivers talk to the agent inside an amphora: push the load balancer's whole
config, reload, remove it, rotate certificates, read live statistics. The real one is an
httpx client with mTLS (agent API 1.0); its transport is one method, so tests use a mock."""

from __future__ import annotations

from dataclasses import dataclass
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
