"""Wiring: build the objects each process needs from Settings. The only place that does."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
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
from statera.housekeeping.runner import Housekeeper
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


AUTO_REAL = {"compute_driver": "compute_netns_driver", "network_driver": "network_bridge_driver",
             "amphora_driver": "amphora_haproxy_rest_driver"}
AUTO_NOOP = {"compute_driver": "compute_noop_driver", "network_driver": "network_noop_driver",
             "amphora_driver": "amphora_noop_driver"}


def missing_for_real_amphorae() -> str | None:
    """Why namespace amphorae cannot run on this host, or None when they can."""
    if sys.platform != "linux":
        return "namespace amphorae need Linux"
    if os.geteuid() != 0:
        return "not running as root"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("haproxy", "haproxy")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install {package})"
    return None


def resolve_auto_drivers(settings: Settings) -> None:
    """Replace the ``auto`` driver choices by real or noop drivers for this host; a fall
    back to noop is logged as a warning saying why."""
    cw = settings.controller_worker
    auto = [name for name in AUTO_REAL if getattr(cw, name) == "auto"]
    if not auto:
        return
    why = missing_for_real_amphorae()
    for name in auto:
        setattr(cw, name, (AUTO_NOOP if why else AUTO_REAL)[name])
    if why:
        LOG.warning("Amphorae are noop (load balancers will not carry traffic): %s. Run as "
                    "root with haproxy, iproute2 and nftables installed for real amphorae, or "
                    "set [controller_worker] compute_driver/network_driver/amphora_driver.",
                    why)


def uses_netns(settings: Settings) -> bool:
    cw = settings.controller_worker
    return REAL.get(cw.compute_driver) == "netns" or REAL.get(cw.network_driver) == "bridge"


def prepare_host(settings: Settings) -> None:
    """What namespace amphorae need on this host, created if missing: the lb-mgmt-net
    bridge and one bridge per tenant network (each with the host's address), and our
    nftables table keeping traffic on its bridge. Explains what is missing otherwise."""
    resolve_auto_drivers(settings)
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
    protected = [settings.api_settings.bind_port, AGENT_PORT,
                 settings.health_manager.bind_port]
    table = settings.netns.nft_table
    apply_isolation(isolation_rules([mgmt.name, *(n.bridge for n in settings.networks)],
                                    mgmt.name, protected, table=table), table=table)


def amphora_renderer(settings: Settings) -> Any:
    """The haproxy.cfg renderer as the REST driver needs it, laid out like the netns agent."""
    import resource

    from statera.cli.amphora_rest import HaproxyRenderer
    from statera.drivers.netns.amphora_ns import AmphoraNames

    home = netns_state_dir(settings) / "amphorae"
    # HAProxy inherits the agent's descriptor limit, which is ours (same host).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fd_limit = None if hard == resource.RLIM_INFINITY else hard
    ha = settings.haproxy_amphora
    return HaproxyRenderer(
        base_path_of=lambda amp: str(home / amp.id / "lb"),
        socket_dir_of=lambda amp: str(AmphoraNames(amp.id).socket_dir),
        options={"fd_limit": fd_limit,
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
    from statera.services import secrets
    from statera.services.secret_box import SecretBox

    # The secret store's key: created on first start, refused when weak or readable by others.
    resolve = secrets.resolver(db, SecretBox.for_settings(settings))
    renderer = pki = None
    if REAL.get(settings.controller_worker.amphora_driver) == "rest":
        from statera.drivers.certs import init_pki

        pki = init_pki(settings.pki_path,
                       timedelta(seconds=settings.certificates.cert_validity_time))
        renderer = amphora_renderer(settings)
    drivers = load_drivers(settings, renderer=renderer, pki=pki, secrets=resolve)
    if REAL.get(settings.controller_worker.compute_driver) == "netns":
        drivers.compute.heartbeat = agent_heartbeat(settings)  # type: ignore[attr-defined]
    return Wired(settings=settings, db=db, deps=deps, drivers=drivers)


def health_bind(settings: Settings) -> tuple[str, int]:
    """Where the health manager listens: with namespace amphorae, the management bridge's
    host address (the only one they reach), unless configured."""
    hm = settings.health_manager
    ip = hm.bind_ip or (mgmt_host_address(settings) if uses_netns(settings) else "127.0.0.1")
    return ip, hm.bind_port


def agent_heartbeat(settings: Settings) -> Any:
    """What amphorae are told about heartbeats (controllers, interval, their key)."""
    from statera.health.keys import amphora_key, master_key
    from statera.wire.heartbeat import AgentHeartbeat

    hm = settings.health_manager
    controllers = list(hm.controller_ip_port_list)
    if not controllers:
        ip, port = health_bind(settings)
        controllers = [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"]
    master = master_key(settings)
    return AgentHeartbeat(tuple(controllers), hm.heartbeat_interval, hm.heartbeat_mode,
                          key_for=lambda amp_id: amphora_key(master, hm.heartbeat_mode, amp_id))


def start_health_manager(w: Wired) -> Any:
    """The health manager on its own thread and event loop; raises if it cannot bind."""
    from statera.health.keys import master_key
    from statera.health.manager import HealthManager, HealthManagerThread

    manager = HealthManager(w.settings.health_manager, w.db, master_key(w.settings),
                            bind=health_bind(w.settings),
                            wake_worker=lambda: w.deps.wake_worker(),
                            unhealthy=w.drivers.compute.unhealthy)
    runner = HealthManagerThread(manager)
    runner.start()
    return runner


def start_worker(w: Wired) -> Worker:
    worker = Worker(w.deps, w.drivers)
    w.deps.wake_worker = worker.wake
    worker.start()
    return worker


def start_housekeeping(w: Wired) -> Housekeeper:
    keeper = Housekeeper(w.db, w.drivers, w.settings)
    keeper.start()
    return keeper


def on_signals(handler: Callable[[int], None]) -> None:
    """Call ``handler(signum)`` on SIGTERM and SIGINT (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: handler(signum))
