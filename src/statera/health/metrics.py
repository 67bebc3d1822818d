"""The health manager's own instruments, in the process registry (statera.metrics) that
``/metrics`` serves; database-wide views (heartbeat ages, amphorae per status) are read at
scrape time by the API instead."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from statera.metrics import FAILOVERS_STARTED, REGISTRY

__all__ = ["BATCH_SECONDS", "CIRCUIT_OPEN", "FAILOVERS", "HEARTBEATS", "STALE", "ZOMBIES"]

FAILOVERS = FAILOVERS_STARTED
HEARTBEATS = Counter(
    "statera_heartbeats", "Heartbeat datagrams received by this health manager, by result "
    "(accepted, or why they were dropped: bad_hmac, truncated, too_large, replayed, …).",
    ["result"], registry=REGISTRY)
ZOMBIES = Counter(
    "statera_heartbeat_zombies",
    "Valid heartbeats from amphorae that are unknown or deleted (ignored).", registry=REGISTRY)
CIRCUIT_OPEN = Gauge(
    "statera_health_circuit_breaker_open",
    "1 while this health manager's circuit breaker holds automatic failovers back.",
    registry=REGISTRY)
STALE = Gauge("statera_health_stale_amphorae",
              "Monitored amphorae silent past heartbeat_timeout at the last look.",
              registry=REGISTRY)
BATCH_SECONDS = Histogram(
    "statera_health_batch_seconds", "Time to write one batch of heartbeats.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=REGISTRY)
