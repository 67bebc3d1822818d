"""Compute drivers make and remove the place an amphora runs: a pair of network namespaces
(netns), a Nova server (later) or nothing (noop). Every method is idempotent, keyed by the
amphora id, so a resumed flow can call it again safely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class AmphoraBuild:
    """What an amphora needs at boot: its identity and the files its agent starts with."""

    amphora_id: str
    server_pem: bytes = b""          # the amphora's key and certificate (never logged)
    client_ca_pem: bytes = b""       # CA of the controller's client certificate
    agent_config: str = ""           # rendered amphora-agent.conf
    topology: str = "SINGLE"
    availability_zone: str | None = None


@dataclass(frozen=True)
class ComputeInstance:
    compute_id: str
    status: str                      # BUILDING | ACTIVE | ERROR | DELETED
    lb_network_ip: str | None = None


class ComputeDriver(Protocol):
    def build(self, request: AmphoraBuild) -> ComputeInstance:
        """Create (or find, if it exists) the amphora's compute instance."""
        ...

    def status(self, compute_id: str) -> ComputeInstance:
        ...

    def delete(self, compute_id: str) -> None:
        """Remove the instance and everything it left on the host; no error if gone."""
        ...

    def agent_config(self, compute_id: str, topology: str) -> str:
        """The amphora agent's config file as it should be now (controllers, heartbeat
        settings), for the amphora config update flow to push."""
        ...

    def unhealthy(self, compute_ids: list[str]) -> list[str]:
        """Those of ``compute_ids`` this driver can tell are dead right now (the health
        manager fails them over at once); drivers that cannot tell return []."""
        ...

    def instances(self) -> list[str]:
        """Compute ids of every instance this driver has on its host (housekeeping sweeps
        those no amphora owns)."""
        ...
