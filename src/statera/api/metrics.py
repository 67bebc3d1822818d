"""``GET /metrics``: the process's own instruments (statera.metrics) plus what the database
knows, read at scrape time so it holds across processes: objects per provisioning status,
amphorae per status, heartbeat ages, failover operations and the circuit breaker.

Admin only under http_basic (it names amphorae and counts every project's objects)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from statera import metrics
from statera.api.common import context
from statera.db import models as m
from statera.db.types import utcnow
from statera.domain.enums import AmphoraStatus
from statera.domain.errors import PolicyForbidden
from statera.services import policy
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(include_in_schema=False)

_KINDS: dict[str, Any] = {
    "loadbalancer": m.LoadBalancer, "listener": m.Listener, "pool": m.Pool,
    "member": m.Member, "healthmonitor": m.HealthMonitor, "l7policy": m.L7Policy,
    "l7rule": m.L7Rule}


class DatabaseCollector(Collector):
    def __init__(self, d: Deps) -> None:
        self.deps = d

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily(
            "statera_objects", "Objects by kind and provisioning status (DELETED excluded).",
            labels=["kind", "provisioning_status"])
        amphorae = GaugeMetricFamily("statera_amphorae", "Amphorae by status.",
                                     labels=["status"])
        age = GaugeMetricFamily(
            "statera_amphora_heartbeat_age_seconds",
            "Seconds since each amphora's last heartbeat.", labels=["amphora_id"])
        failovers = GaugeMetricFamily(
            "statera_failover_operations", "Failover operations on record, by kind and state.",
            labels=["kind", "state"])
        breaker = GaugeMetricFamily(
            "statera_failover_circuit_breaker_open",
            "1 while automatic failover is stopped (amphorae in FAILOVER_STOPPED), else 0.")
        now = utcnow()
        with self.deps.db.read() as s:
            for kind, model in _KINDS.items():
                for status, count in s.execute(
                        sa.select(model.provisioning_status, sa.func.count())
                        .where(model.provisioning_status != "DELETED")
                        .group_by(model.provisioning_status)):
                    objects.add_metric([kind, status], count)
            stopped = 0
            for status, count in s.execute(sa.select(m.Amphora.status, sa.func.count())
                                           .where(m.Amphora.status != AmphoraStatus.DELETED)
                                           .group_by(m.Amphora.status)):
                amphorae.add_metric([status], count)
                if status == AmphoraStatus.FAILOVER_STOPPED:
                    stopped = count
            for amphora_id, last in s.execute(sa.select(m.AmphoraHealth.amphora_id,
                                                        m.AmphoraHealth.last_update)):
                age.add_metric([amphora_id], max(0.0, (now - last).total_seconds()))
            for kind, state, count in s.execute(
                    sa.select(m.Operation.kind, m.Operation.state, sa.func.count())
                    .where(m.Operation.kind.like("%failover%"))
                    .group_by(m.Operation.kind, m.Operation.state)):
                failovers.add_metric([kind, state], count)
        breaker.add_metric([], 1 if stopped else 0)
        yield from (objects, amphorae, age, failovers, breaker)


class ApiMetrics:
    """Pure-ASGI middleware: requests and latency by method and route template (not the raw
    path, so ids do not explode the label set)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if route != "/metrics":
                method = scope.get("method", "")
                metrics.API_REQUESTS.labels(method, route, str(status[0])).inc()
                metrics.API_LATENCY.labels(method, route).observe(
                    time.perf_counter() - started)


def install(app: Any, d: Deps) -> None:
    """Register the database collector once per Deps and add the request middleware."""
    collector = DatabaseCollector(d)
    app.state.metrics_registry = _registry_with(collector)
    app.add_middleware(ApiMetrics)
    app.include_router(router)


def _registry_with(collector: Collector) -> Any:
    from prometheus_client import CollectorRegistry

    class _Both(CollectorRegistry):
        """The process registry plus this app's database collector."""

        def collect(self):  # type: ignore[no-untyped-def]
            yield from metrics.REGISTRY.collect()
            yield from collector.collect()

    return _Both(auto_describe=False)


@router.get("/metrics")
def scrape(request: Request, ctx: RequestContext = Depends(context)) -> Response:
    if not policy.admin(ctx, None):
        raise PolicyForbidden()
    body = generate_latest(request.app.state.metrics_registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
