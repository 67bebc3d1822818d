"""Network drivers put an amphora on the tenant networks: its VIP (and VRRP) address on the
VIP network, and an interface on each member network. The VIP address itself is allocated at
API time from the port table; drivers make it real on the data plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from statera.domain.model import Amphora, LoadBalancer


@dataclass(frozen=True)
class PluggedInterface:
    """An amphora's interface on one tenant network, as the agent's plug APIs want it."""

    network_id: str
    subnet_cidr: str
    ip_address: str
    mac_address: str
    gateway: str | None = None
    mtu: int = 1500
    host_routes: tuple[tuple[str, str], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


class NetworkDriver(Protocol):
    def plug_vip(self, lb: LoadBalancer, amphora: Amphora) -> PluggedInterface:
        """Give the amphora an interface on the VIP network carrying the VIP (and its own
        VRRP address in ACTIVE_STANDBY). Idempotent."""
        ...

    def unplug_vip(self, lb: LoadBalancer, amphora: Amphora) -> None:
        ...

    def plug_member_networks(self, lb: LoadBalancer, amphora: Amphora
                             ) -> list[PluggedInterface]:
        """Make sure the amphora has an interface on every network its members sit on, and
        none it no longer needs."""
        ...

    def update_allowed_cidrs(self, lb: LoadBalancer, amphora: Amphora) -> None:
        """Apply every listener's allowed_cidrs to the amphora's VIP interface."""
        ...
