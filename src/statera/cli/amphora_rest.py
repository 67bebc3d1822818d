"""Wiring of the REST amphora driver to the haproxy.cfg and keepalived.conf renderers.

Drivers may not import statera.render (the layers contract), so the process wiring hands
the driver a renderer: ``RestAmphoraDriver(pki.paths, renderer=HaproxyRenderer(...),
secrets=...)``. The paths in the options follow the agent's layout (statera.agent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statera.agent.keepalived import CHECK_SCRIPT
from statera.domain.enums import AmphoraStatus, Topology
from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.base import VrrpSpec
from statera.drivers.amphora.rest import PENDING_DELETE, RenderedConfig, tls_refs
from statera.render.haproxy import render_crt_list, render_haproxy_config
from statera.render.keepalived import KeepalivedOptions, render_keepalived_config
from statera.render.options import RenderOptions, cert_file, crt_list_file

# HAProxy's peers (stick-table replication) listen here on each amphora's VRRP address.
PEER_PORT = 1025
_SERVING = frozenset({AmphoraStatus.ALLOCATED, AmphoraStatus.FAILOVER_STOPPED})


@dataclass(frozen=True)
class HaproxyRenderer:
    agent_base_path: str = "/var/lib/statera-agent"
    options: dict[str, Any] = field(default_factory=dict)
    """Further RenderOptions fields (timeouts, log target, connection limit...)."""
    base_path_of: Callable[[Amphora], str] | None = None
    """The agent's base path for an amphora, when each has its own (netns amphorae)."""
    socket_dir_of: Callable[[Amphora], str] | None = None
    """A short directory for the stats socket (unix socket paths are limited in length)."""

    def _root(self, amphora: Amphora) -> str:
        return (self.base_path_of(amphora) if self.base_path_of else
                self.agent_base_path).rstrip("/")

    def render_options(self, lb: LoadBalancer, amphora: Amphora) -> RenderOptions:
        root = self._root(amphora)
        base = f"{root}/{lb.id}"
        socket = (f"{self.socket_dir_of(amphora)}/{lb.id}.sock" if self.socket_dir_of
                  else f"{base}/haproxy.sock")
        return RenderOptions(base_path=base, stats_socket=socket,
                             server_state_file=f"{base}/servers-state",
                             cert_dir=f"{root}/certs/{lb.id}", **self.options,
                             **_peers(lb, amphora))

    def keepalived(self, lb: LoadBalancer, amphora: Amphora, vrrp: VrrpSpec) -> str:
        """keepalived.conf of an ACTIVE_STANDBY amphora (the REST driver's VrrpRenderer)."""
        return render_keepalived_config(lb, amphora, KeepalivedOptions(
            check_script=f"{self._root(amphora)}/{CHECK_SCRIPT}", vrrp_version=vrrp.version,
            advert_int=vrrp.advert_int, auth_pass=vrrp.auth_pass,
            check_interval=vrrp.check_interval, fail_count=vrrp.fail_count,
            success_count=vrrp.success_count,
            garp_refresh_interval=vrrp.garp_refresh_interval,
            garp_refresh_count=vrrp.garp_refresh_count, vip_cidr=vrrp.vip_cidr,
            vip_gateway=vrrp.vip_gateway))

    def __call__(self, lb: LoadBalancer, amphora: Amphora) -> RenderedConfig:
        opts = self.render_options(lb, amphora)
        crt_lists = {crt_list_file(li.id): render_crt_list(li, opts).encode()
                     for li in lb.listeners
                     if li.provisioning_status != PENDING_DELETE
                     and (li.default_tls_container_ref or li.sni_container_refs)}
        return RenderedConfig(haproxy_cfg=render_haproxy_config(lb, opts),
                              certificates={cert_file(ref): ref for ref in tls_refs(lb)},
                              files=crt_lists)


def _peers(lb: LoadBalancer, amphora: Amphora) -> dict[str, Any]:
    """HAProxy peers of an ACTIVE_STANDBY amphora: every serving amphora of the load
    balancer with a VRRP address (itself included), named by amphora id."""
    if lb.topology != Topology.ACTIVE_STANDBY or not amphora.vrrp_ip:
        return {}
    peers = [(a.id, a.vrrp_ip, PEER_PORT) for a in lb.amphorae
             if a.vrrp_ip and (a.id == amphora.id or a.status in _SERVING)]
    if amphora.id not in {p[0] for p in peers}:
        peers.append((amphora.id, amphora.vrrp_ip, PEER_PORT))
    return {"peers": tuple(peers), "local_peer": amphora.id}
