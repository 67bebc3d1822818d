"""Control-plane metrics (Prometheus). Process-local instruments live here, in one registry
per process; what every process shares — objects per provisioning status, amphora states,
heartbeat ages, failovers, the circuit breaker — is read from the database when scraped
(``statera.api.metrics``), so one scrape of any API process tells the whole story.

Kept free of other Statera imports so every layer can record into it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_FLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

API_REQUESTS = Counter(
    "statera_api_requests", "API requests answered, by method, route template (without the "
    "/v2 or /v2.0 prefix) and status.",
    ["method", "route", "status"], registry=REGISTRY)
API_LATENCY = Histogram(
    "statera_api_request_duration_seconds", "Time to answer an API request.",
    ["method", "route"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
OPERATIONS = Counter(
    "statera_operations", "Operations run to the end by this process's workers, by kind and "
    "outcome (SUCCEEDED, FAILED).", ["kind", "outcome"], registry=REGISTRY)
OPERATION_DURATION = Histogram(
    "statera_operation_duration_seconds", "Time a worker spent running an operation's flow.",
    ["kind", "outcome"], buckets=_FLOW_BUCKETS, registry=REGISTRY)
FAILOVERS_STARTED = Counter(
    "statera_failovers_started", "Automatic failovers started by this process's health "
    "manager.", registry=REGISTRY)


def record_operation(kind: str, outcome: str, seconds: float) -> None:
    OPERATIONS.labels(kind, outcome).inc()
    OPERATION_DURATION.labels(kind, outcome).observe(seconds)
