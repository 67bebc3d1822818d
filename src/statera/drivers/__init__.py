"""Drivers, one package per kind, each a Protocol with a noop implementation beside it.

Drivers are chosen by name from the config (upstream's names work too) by ``load_drivers``
and passed down; nothing looks them up inside a step.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statera.config import Settings
from statera.domain.errors import ConfigError
from statera.drivers.amphora.base import AmphoraDriver
from statera.drivers.certs import CertIssuer, NoopCertIssuer
from statera.drivers.compute.base import ComputeDriver
from statera.drivers.network.base import NetworkDriver
from statera.drivers.noop_log import CallLog

REAL = {"compute_netns_driver": "netns", "netns": "netns",
        "network_bridge_driver": "bridge", "bridge": "bridge",
        "amphora_haproxy_rest_driver": "rest", "rest": "rest"}


@dataclass
class Drivers:
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver
    calls: CallLog
    certs: CertIssuer = field(default_factory=NoopCertIssuer)


def mgmt_host_address(settings: Settings) -> str:
    return str(next(ipaddress.ip_network(settings.netns.mgmt_cidr).hosts()))


def netns_state_dir(settings: Settings) -> Path:
    return Path(settings.default.state_path) / "netns"


def load_drivers(settings: Settings, *, renderer: Any = None, pki: Any = None,
                 secrets: Any = None) -> Drivers:
    """Drivers by their configured names. The REST amphora driver needs a renderer, the
    PKI and the secret store's ``ref -> PEM bundle`` (``secrets``), which the process
    wiring (cli) builds and passes in."""
    from statera.drivers.amphora.noop import NoopAmphoraDriver
    from statera.drivers.compute.noop import NoopComputeDriver
    from statera.drivers.network.noop import NoopNetworkDriver

    calls = CallLog(settings.noop_drivers.call_log or None, settings.noop_drivers.delay)
    cw = settings.controller_worker
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver
    if REAL.get(cw.compute_driver) == "netns":
        from statera.drivers.compute.netns import NetnsComputeDriver

        python = settings.netns.agent_python or sys.executable
        compute = NetnsComputeDriver(
            state_dir=netns_state_dir(settings), mgmt_bridge=settings.netns.mgmt_bridge,
            mgmt_cidr=settings.netns.mgmt_cidr,
            mgmt_host_address=mgmt_host_address(settings),
            agent_command=lambda home: [python, "-m", "statera.agent", str(home / "agent.conf")])
    else:
        compute = NoopComputeDriver(calls)
    if REAL.get(cw.network_driver) == "bridge":
        from statera.drivers.network.bridge import BridgeNetworkDriver

        network = BridgeNetworkDriver(settings.networks)
    else:
        network = NoopNetworkDriver(calls)
    certs: CertIssuer = NoopCertIssuer()
    if REAL.get(cw.amphora_driver) == "rest":
        from statera.drivers.amphora.rest import RestAmphoraDriver

        if pki is None or renderer is None:
            raise ConfigError("amphora_haproxy_rest_driver needs the PKI and a renderer.")
        amphora = (RestAmphoraDriver(pki.paths, renderer=renderer, secrets=secrets)
                   if secrets is not None else RestAmphoraDriver(pki.paths, renderer=renderer))
        certs = pki
    else:
        amphora = NoopAmphoraDriver(calls)
    return Drivers(compute=compute, network=network, amphora=amphora, calls=calls,
                   certs=certs)
