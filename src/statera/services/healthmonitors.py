"""Health monitors: build (also for single-call creates), read, list, update and delete.

One health monitor per pool. The strings that reach haproxy.cfg (url_path, expected_codes,
domain_name) are checked against closed character sets with full matches.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import (
    POOL_MONITOR_TYPES,
    HealthMonitorType,
    HttpMethod,
    OperatingStatus,
    ProvisioningStatus,
)
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import common, listing, reads
from statera.services.common import GraphBuild, authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.fields import (
    boolean,
    check_keys,
    choice,
    integer,
    invalid,
    required_bool,
    tags,
    text,
)
from statera.services.pools import lock_pool, pool_listeners

LISTING = listing.Listing(
    model=m.HealthMonitor,
    columns={
        "id": m.HealthMonitor.id,
        "name": m.HealthMonitor.name,
        "type": m.HealthMonitor.type,
        "delay": m.HealthMonitor.delay,
        "timeout": m.HealthMonitor.timeout,
        "max_retries": m.HealthMonitor.rise_threshold,
        "max_retries_down": m.HealthMonitor.fall_threshold,
        "http_method": m.HealthMonitor.http_method,
        "url_path": m.HealthMonitor.url_path,
        "expected_codes": m.HealthMonitor.expected_codes,
        "admin_state_up": m.HealthMonitor.enabled,
        "project_id": m.HealthMonitor.project_id,
        "tenant_id": m.HealthMonitor.project_id,
        "provisioning_status": m.HealthMonitor.provisioning_status,
        "operating_status": m.HealthMonitor.operating_status,
        "created_at": m.HealthMonitor.created_at,
        "updated_at": m.HealthMonitor.updated_at,
        "http_version": m.HealthMonitor.http_version,
        "domain_name": m.HealthMonitor.domain_name,
        "pool_id": m.HealthMonitor.pool_id,
    },
)

HM_KEYS = frozenset(
    {
        "name",
        "type",
        "delay",
        "timeout",
        "max_retries",
        "max_retries_down",
        "http_method",
        "url_path",
        "expected_codes",
        "admin_state_up",
        "tags",
        "http_version",
        "domain_name",
        "project_id",
        "tenant_id",
        "pool_id",
    }
)
UPDATE_KEYS = HM_KEYS - {"type", "pool_id", "project_id", "tenant_id"}
HTTP_TYPES = frozenset({HealthMonitorType.HTTP, HealthMonitorType.HTTPS})
HTTP_ONLY = ("http_method", "url_path", "expected_codes")
# HAProxy keeps timers in milliseconds in a signed 32-bit integer: 24 days is the safe top.
MAX_INTERVAL = 24 * 24 * 3600

# An absolute path with an optional query: RFC 3986 pchar plus "/" and "?", percent-escapes
# complete. No whitespace, quotes, backslash or "#", which HAProxy's parser would act on.
_URL_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&()*+,;=:@/?]|%[0-9A-Fa-f]{2}){0,2047}")
_CODES_LIST = re.compile(r"[0-9]{3}(?:,[0-9]{3})*")
_CODES_RANGE = re.compile(r"([0-9]{3})-([0-9]{3})")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")


def _url_path(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _URL_PATH.fullmatch(value):
        raise invalid(
            "url_path",
            value,
            "An absolute URL path starting with '/' (no whitespace, "
            "quotes, '#' or control characters) is required.",
        )
    return value


def _expected_codes(value: Any) -> str | None:
    if value is None:
        return None
    codes: list[int] = []
    if isinstance(value, str) and len(value) <= 64:
        if _CODES_LIST.fullmatch(value):
            codes = [int(c) for c in value.split(",")]
        elif (found := _CODES_RANGE.fullmatch(value)) and int(found.group(1)) <= int(
            found.group(2)
        ):
            codes = [int(found.group(1)), int(found.group(2))]
    if not codes or not all(100 <= c <= 599 for c in codes):
        raise invalid(
            "expected_codes",
            value,
            "Use a code (200), a list (200,202) or a range "
            "(200-204) of HTTP codes from 100 to 599.",
        )
    return value


def _http_version(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in (1.0, 1.1):
        raise invalid("http_version", value, "Value should be one of: 1.0, 1.1.")
    return float(value)


def _domain_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value):
        raise invalid("domain_name", value, "A valid host name is required.")
    return value


def check_settings(
    deps: Deps, pool_protocol: str, state: dict[str, Any], given: dict[str, Any]
) -> dict[str, Any]:
    """Check a monitor's probe settings (API names in ``state``, what the client sent in
    ``given``) for a pool of ``pool_protocol``; column values out, defaults filled."""
    api = deps.settings.api_settings
    hm_type = choice(state, "type", [t.value for t in HealthMonitorType], required=True)
    assert hm_type is not None
    if hm_type not in POOL_MONITOR_TYPES.get(pool_protocol, frozenset()):
        raise InvalidInput(
            f"Health monitors of type {hm_type} are not supported for pools of "
            f"protocol {pool_protocol}."
        )
    if hm_type == HealthMonitorType.PING and not api.allow_ping_health_monitors:
        raise InvalidInput("The selected type is not allowed in this deployment: PING")
    delay = integer(state, "delay", 0, MAX_INTERVAL, required=True)
    assert delay is not None
    if (
        hm_type == HealthMonitorType.UDP_CONNECT
        and delay < api.udp_connect_min_interval_health_monitor
    ):
        raise InvalidInput(
            f"The delay of a UDP-CONNECT health monitor must be at least "
            f"{api.udp_connect_min_interval_health_monitor}."
        )
    out: dict[str, Any] = {
        "type": hm_type,
        "delay": delay,
        "timeout": integer(state, "timeout", 0, MAX_INTERVAL, required=True),
        "rise_threshold": integer(state, "max_retries", 1, 10, required=True),
        "fall_threshold": integer(state, "max_retries_down", 1, 10, default=3),
        "http_version": _http_version(state.get("http_version")),
        "domain_name": _domain_name(state.get("domain_name")),
    }
    if out["domain_name"] is not None and out["http_version"] != 1.1:
        raise InvalidInput("domain_name requires http_version 1.1.")
    if hm_type in HTTP_TYPES:
        out["http_method"] = (
            choice(state, "http_method", [h.value for h in HttpMethod]) or HttpMethod.GET.value
        )
        out["url_path"] = _url_path(state.get("url_path")) or "/"
        out["expected_codes"] = _expected_codes(state.get("expected_codes")) or "200"
    else:
        for key in HTTP_ONLY:
            if given.get(key) is not None:
                raise InvalidInput(
                    f"{key} is only valid for health monitors of type HTTP or HTTPS, not {hm_type}."
                )
            out[key] = None
    return out


def build_health_monitor(
    session: Session, deps: Deps, pool: m.Pool, data: dict[str, Any], *, graph: GraphBuild
) -> m.HealthMonitor:
    """Check ``data`` and add the health monitor (PENDING_CREATE) of ``pool``. The caller
    locks, checks quota and enqueues."""
    if not isinstance(data, dict):
        raise invalid("healthmonitor", data, "An object is required.")
    check_keys(data, HM_KEYS, "healthmonitor")
    settings = check_settings(deps, pool.protocol, data, data)
    if pool.health_monitor is not None:
        raise Conflict(f"Pool {pool.id} already has health monitor {pool.health_monitor.id}.")
    hm_tags = tags(data)
    hm = m.HealthMonitor(
        id=new_id(),
        project_id=pool.project_id,
        pool_id=pool.id,
        name=text(data, "name"),
        enabled=boolean(data, "admin_state_up", True),
        provisioning_status=ProvisioningStatus.PENDING_CREATE,
        operating_status=OperatingStatus.OFFLINE,
        **settings,
    )
    pool.health_monitor = hm
    session.add(hm)
    graph.add("health_monitor", hm)
    common.set_tags(session, hm.id, hm_tags)
    return hm


# ---- reading ---------------------------------------------------------------------------------


def get(deps: Deps, ctx: RequestContext, hm_id: str, *, check: bool = True) -> m.HealthMonitor:
    return reads.get_tagged(deps, ctx, m.HealthMonitor, hm_id, "healthmonitor:get_one", check=check)


def list_(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    return reads.list_live(deps, ctx, m.HealthMonitor, "healthmonitor", LISTING, params, base_url)


# ---- changing --------------------------------------------------------------------------------


def _lock(
    session: Session, ctx: RequestContext, hm_id: str, action: str
) -> tuple[m.LoadBalancer, m.Pool, list[m.Listener], m.HealthMonitor]:
    pool_id = session.scalar(sa.select(m.HealthMonitor.pool_id).where(m.HealthMonitor.id == hm_id))
    if pool_id is None:
        raise NotFound(resource="Health Monitor", id=hm_id)
    lb, pool = lock_pool(session, pool_id)
    hm = common.get_or_404(session, m.HealthMonitor, hm_id)
    authorize(ctx, action, lb.project_id)
    listeners = pool_listeners(session, pool.id)
    common.require_mutable(lb, pool, hm, *listeners)
    return lb, pool, listeners, hm


def create(deps: Deps, ctx: RequestContext, data: dict[str, Any]) -> m.HealthMonitor:
    pool_id = data.get("pool_id")
    if not pool_id:
        raise invalid("pool_id", None, "Mandatory field missing.")

    def work(session: Session) -> str:
        lb, pool = lock_pool(session, pool_id)
        authorize(ctx, "healthmonitor:post", lb.project_id)
        listeners = pool_listeners(session, pool.id)
        common.require_mutable(lb, pool, *listeners)
        common.check_quota(session, deps, lb.project_id, {"health_monitor": 1})
        hm = build_health_monitor(session, deps, pool, data, graph=GraphBuild(single_call=False))
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, pool, *listeners)
        common.enqueue_child_change(session, ctx, lb, "healthmonitor", hm.id, "create")
        return hm.id

    hm_id = deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, hm_id, check=False)


def _current(hm: m.HealthMonitor) -> dict[str, Any]:
    return {
        "type": hm.type,
        "delay": hm.delay,
        "timeout": hm.timeout,
        "max_retries": hm.rise_threshold,
        "max_retries_down": hm.fall_threshold,
        "http_method": hm.http_method,
        "url_path": hm.url_path,
        "expected_codes": hm.expected_codes,
        "http_version": hm.http_version,
        "domain_name": hm.domain_name,
    }


def update(deps: Deps, ctx: RequestContext, hm_id: str, changes: dict[str, Any]) -> m.HealthMonitor:
    check_keys(changes, UPDATE_KEYS, "healthmonitor")

    def work(session: Session) -> None:
        lb, pool, listeners, hm = _lock(session, ctx, hm_id, "healthmonitor:put")
        # null resets http_method, url_path, expected_codes and max_retries_down to defaults.
        state = _current(hm)
        state.update({k: v for k, v in changes.items() if k in state})
        for column, value in check_settings(deps, pool.protocol, state, changes).items():
            setattr(hm, column, value)
        if "name" in changes:
            hm.name = text(changes, "name")
        if "admin_state_up" in changes:
            hm.enabled = required_bool(changes, "admin_state_up")
        if "tags" in changes:
            common.set_tags(session, hm.id, tags(changes))
        hm.provisioning_status = ProvisioningStatus.PENDING_UPDATE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, pool, *listeners)
        common.enqueue_child_change(
            session, ctx, lb, "healthmonitor", hm.id, "update", payload={"changes": sorted(changes)}
        )

    deps.db.write_retrying(work)
    deps.wake_worker()
    return get(deps, ctx, hm_id, check=False)


def delete(deps: Deps, ctx: RequestContext, hm_id: str) -> None:
    def work(session: Session) -> None:
        lb, pool, listeners, hm = _lock(session, ctx, hm_id, "healthmonitor:delete")
        hm.provisioning_status = ProvisioningStatus.PENDING_DELETE
        common.mark(ProvisioningStatus.PENDING_UPDATE, lb, pool, *listeners)
        common.enqueue_child_change(session, ctx, lb, "healthmonitor", hm.id, "delete")

    deps.db.write_retrying(work)
    deps.wake_worker()
