"""Amphora JSON shapes (the admin API has no request bodies)."""

from __future__ import annotations

from typing import Any

from statera.db import models as m
from statera.services.listing import fmt_time


def present_amphora(amp: m.Amphora) -> dict[str, Any]:
    return {
        "id": amp.id,
        "loadbalancer_id": amp.load_balancer_id,
        "compute_id": amp.compute_id,
        "lb_network_ip": amp.lb_network_ip,
        "vrrp_ip": amp.vrrp_ip,
        "ha_ip": amp.ha_ip,
        "vrrp_port_id": amp.vrrp_port_id,
        "ha_port_id": amp.ha_port_id,
        "cert_expiration": fmt_time(amp.cert_expiration),
        "cert_busy": bool(amp.cert_busy),
        "role": amp.role,
        "status": amp.status,
        "vrrp_interface": amp.vrrp_interface,
        "vrrp_id": amp.vrrp_id,
        "vrrp_priority": amp.vrrp_priority,
        "cached_zone": amp.cached_zone,
        "created_at": fmt_time(amp.created_at),
        "updated_at": fmt_time(amp.updated_at),
        "image_id": amp.image_id,
        "compute_flavor": amp.compute_flavor,
    }
