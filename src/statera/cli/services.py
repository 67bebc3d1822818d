"""Wiring: build the objects each process needs from Settings. The only place that does."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from statera.config import Settings
from statera.db.database import Database
from statera.db.migrate import head_revision, is_current, upgrade
from statera.domain.errors import ConfigError
from statera.drivers import REAL, Drivers, load_drivers, mgmt_host_address, netns_state_dir
from statera.services.deps import Deps
from statera.wire.agent import AGENT_PORT
from statera.worker.runner import Worker

LOG = logging.getLogger("statera")


@dataclass
class Wired:
    settings: Settings
    db: Database
    deps: Deps
    drivers: Drivers


def uses_netns(settings: Settings) -> bool:
    cw = settings.controller_worker
    return REAL.get(cw.compute_driver) == "netns" or REAL.get(cw.network_driver) == "bridge"


def prepare_host(settings: Settings) -> None:
    """What namespace amphorae need on this host, created if missing: the lb-mgmt-net
    bridge and one bridge per tenant network (each with the host's address), and our
    nftables table keeping traffic on its bridge. Explains what is missing otherwise."""
    if not uses_netns(settings):
        return
    if os.geteuid() != 0:
        raise ConfigError("Namespace amphorae need root: run Statera as root, or choose the "
                          "noop drivers ([controller_worker] compute_driver = "
                          "compute_noop_driver, network_driver = network_noop_driver).")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("haproxy", "haproxy")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise ConfigError(f"{tool} is not installed: apt-get install {package}")
    from statera.drivers.netns.host import (
        BridgeSpec,
        apply_isolation,
        ensure_bridge,
        isolation_rules,
    )
    from statera.drivers.netns.ip import Ip

    ip = Ip()
    mgmt = BridgeSpec(settings.netns.mgmt_bridge, settings.netns.mgmt_cidr,
                      mgmt_host_address(settings))
    ensure_bridge(ip, mgmt)
    for net in settings.networks:
        if net.gateway_ip is None:
            raise ConfigError(f"[network:{net.name}] needs a gateway_ip: the host's address "
                              "on its bridge.")
        ensure_bridge(ip, BridgeSpec(net.bridge, net.cidr, net.gateway_ip, net.mtu))
    protected = [settings.api_settings.bind_port, AGENT_PORT, 5555]
    table = settings.netns.nft_table
    apply_isolation(isolation_rules([mgmt.name, *(n.bridge for n in settings.networks)],
                                    mgmt.name, protected, table=table), table=table)


def amphora_renderer(settings: Settings) -> Any:
    """The haproxy.cfg renderer as the REST driver needs it, laid out like the netns agent."""
    import resource

    from statera.cli.amphora_rest import HaproxyRenderer
    from statera.drivers.netns.amphora_ns import AmphoraNames

    home = netns_state_dir(settings) / "amphorae"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cap = None if hard == resource.RLIM_INFINITY else max(256, (hard - 200) // 2)
    ha = settings.haproxy_amphora
    return HaproxyRenderer(
        base_path_of=lambda amp: str(home / amp.id / "lb"),
        socket_dir_of=lambda amp: str(AmphoraNames(amp.id).socket_dir),
        options={"global_maxconn_cap": cap,
                 "default_connection_limit": ha.default_connection_limit,
                 "timeout_client_data": ha.timeout_client_data,
                 "timeout_member_connect": ha.timeout_member_connect,
                 "timeout_member_data": ha.timeout_member_data,
                 "timeout_tcp_inspect": ha.timeout_tcp_inspect})


def wire(settings: Settings, *, migrate: bool) -> Wired:
    url = settings.database_url
    if migrate:
        upgrade(url)
    elif not is_current(url):
        raise ConfigError(f"The database schema is not at revision {head_revision()}: run "
                          "'statera db upgrade' first.")
    db = Database(url, pool_size=settings.database.pool_size,
                  max_overflow=settings.database.max_overflow)
    deps = Deps(settings=settings, db=db)
    renderer = pki = None
    if REAL.get(settings.controller_worker.amphora_driver) == "rest":
        from statera.drivers.certs import init_pki

        pki = init_pki(settings.pki_path,
                       timedelta(seconds=settings.certificates.cert_validity_time))
        renderer = amphora_renderer(settings)
    return Wired(settings=settings, db=db, deps=deps,
                 drivers=load_drivers(settings, renderer=renderer, pki=pki))


def start_worker(w: Wired) -> Worker:
    worker = Worker(w.deps, w.drivers)
    w.deps.wake_worker = worker.wake
    worker.start()
    return worker


def on_signals(handler: Callable[[int], None]) -> None:
    """Call ``handler(signum)`` on SIGTERM and SIGINT (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: handler(signum))
