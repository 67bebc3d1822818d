"""GET /metrics: the process's API and operation instruments plus database-wide gauges, in
the Prometheus text format; admin only under http_basic."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from statera.db import models as m
from statera.db.types import utcnow
from statera.services import users
from tests.conftest import Api, build_api


def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.client.get("/metrics", headers={**api.headers, "Accept": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_report_requests_operations_objects_and_health(api: Api) -> None:
    lb = api.make_lb()
    amp_id = str(uuid.uuid4())
    with api.deps.db.write() as s:
        s.add(m.Amphora(id=amp_id, status="ALLOCATED", load_balancer_id=lb["id"]))
        s.add(m.AmphoraHealth(amphora_id=amp_id, last_update=utcnow(), busy=False))
    got = _samples(api)

    assert got[("statera_objects", (("kind", "loadbalancer"),
                                    ("provisioning_status", "ACTIVE")))] == 1
    assert got[("statera_api_requests_total", (("method", "POST"),
                                               ("route", "/lbaas/loadbalancers"),
                                               ("status", "201")))] >= 1
    assert got[("statera_operations_total", (("kind", "create_load_balancer"),
                                             ("outcome", "SUCCEEDED")))] >= 1
    assert got[("statera_amphorae", (("status", "ALLOCATED"),))] == 2
    age = got[("statera_amphora_heartbeat_age_seconds", (("amphora_id", amp_id),))]
    assert 0 <= age < 60
    assert got[("statera_failover_circuit_breaker_open", ())] == 0
    # Raw ids never become label values of the request metrics.
    api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")
    routes = {dict(k[1]).get("route") for k in _samples(api) if k[0].startswith("statera_api")}
    assert "/lbaas/loadbalancers/{lb_id}" in routes and not any(
        lb["id"] in (r or "") for r in routes)


def test_circuit_breaker_state_is_visible(api: Api) -> None:
    with api.deps.db.write() as s:
        s.add(m.Amphora(id=str(uuid.uuid4()), status="FAILOVER_STOPPED"))
    assert _samples(api)[("statera_failover_circuit_breaker_open", ())] == 1


def test_metrics_are_for_admins_only(tmp_path: Path) -> None:
    api = build_api(tmp_path, STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    users.add_user(api.deps.db, "carol", "pw-c", "pc", ["member"])
    users.add_user(api.deps.db, "root", "pw-r", "pr", ["admin"])
    auth = {name: {"Authorization": "Basic " + base64.b64encode(cred).decode()}
            for name, cred in (("carol", b"carol:pw-c"), ("root", b"root:pw-r"))}
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=auth["carol"]).status_code == 403
    assert api.client.get("/metrics", headers=auth["root"]).status_code == 200
