"""Flow contexts: small, JSON-serialisable state carried from step to step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LbContext:
    """State of every load-balancer-scoped flow."""

    lb_id: str
    target_type: str | None = None
    target_id: str | None = None
    topology: str = "SINGLE"
    # Amphorae this flow creates (replacements in a failover), planned before any is built.
    new_amphora_ids: list[str] = field(default_factory=list)
    # Amphorae this flow retires (failover) or removes (delete).
    old_amphora_ids: list[str] = field(default_factory=list)
    # ACTIVE_STANDBY failover: survivors made MASTER for it (demoted again on revert), and,
    # for a load balancer failover, the amphorae still to replace, one round each.
    promoted_amphora_ids: list[str] = field(default_factory=list)
    failover_queue: list[list[str]] = field(default_factory=list)
    failover_round: int = 1
    # Members touched by a batch update.
    batch: dict[str, list[str]] = field(default_factory=dict)
