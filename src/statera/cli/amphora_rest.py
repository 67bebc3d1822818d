"""Wiring of the REST amphora driver to the haproxy.cfg renderer.

Drivers may not import statera.render (the layers contract), so the process wiring hands
the driver a renderer: ``RestAmphoraDriver(pki.paths, renderer=HaproxyRenderer(...),
secrets=...)``. The paths in the options follow the agent's layout (statera.agent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.rest import PENDING_DELETE, RenderedConfig, tls_refs
from statera.render.haproxy import render_crt_list, render_haproxy_config
from statera.render.options import RenderOptions, cert_file, crt_list_file


@dataclass(frozen=True)
class HaproxyRenderer:
    agent_base_path: str = "/var/lib/statera-agent"
    options: dict[str, Any] = field(default_factory=dict)
    """Further RenderOptions fields (timeouts, log target, connection limit...)."""
    base_path_of: Callable[[Amphora], str] | None = None
    """The agent's base path for an amphora, when each has its own (netns amphorae)."""
    socket_dir_of: Callable[[Amphora], str] | None = None
    """A short directory for the stats socket (unix socket paths are limited in length)."""

    def render_options(self, lb: LoadBalancer, amphora: Amphora) -> RenderOptions:
        root = (self.base_path_of(amphora) if self.base_path_of else
                self.agent_base_path).rstrip("/")
        base = f"{root}/{lb.id}"
        socket = (f"{self.socket_dir_of(amphora)}/{lb.id}.sock" if self.socket_dir_of
                  else f"{base}/haproxy.sock")
        return RenderOptions(base_path=base, stats_socket=socket,
                             server_state_file=f"{base}/servers-state",
                             cert_dir=f"{root}/certs/{lb.id}", **self.options)

    def __call__(self, lb: LoadBalancer, amphora: Amphora) -> RenderedConfig:
        opts = self.render_options(lb, amphora)
        crt_lists = {crt_list_file(li.id): render_crt_list(li, opts).encode()
                     for li in lb.listeners
                     if li.provisioning_status != PENDING_DELETE
                     and (li.default_tls_container_ref or li.sni_container_refs)}
        return RenderedConfig(haproxy_cfg=render_haproxy_config(lb, opts),
                              certificates={cert_file(ref): ref for ref in tls_refs(lb)},
                              files=crt_lists)
