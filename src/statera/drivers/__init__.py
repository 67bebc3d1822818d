"""Drivers, one package per kind, each a Protocol with a noop implementation beside it.

Drivers are chosen by name from the config (upstream's names work too) by ``load_drivers``
and passed down; nothing looks them up inside a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from statera.config import Settings
from statera.domain.errors import ConfigError
from statera.drivers.amphora.base import AmphoraDriver
from statera.drivers.compute.base import ComputeDriver
from statera.drivers.network.base import NetworkDriver
from statera.drivers.noop_log import CallLog


@dataclass
class Drivers:
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver
    calls: CallLog


def load_drivers(settings: Settings) -> Drivers:
    from statera.drivers.amphora.noop import NoopAmphoraDriver
    from statera.drivers.compute.noop import NoopComputeDriver
    from statera.drivers.network.noop import NoopNetworkDriver

    calls = CallLog(settings.noop_drivers.call_log or None, settings.noop_drivers.delay)
    cw = settings.controller_worker
    compute = {"compute_noop_driver": NoopComputeDriver, "noop": NoopComputeDriver}
    network = {"network_noop_driver": NoopNetworkDriver, "noop": NoopNetworkDriver}
    amphora = {"amphora_noop_driver": NoopAmphoraDriver, "noop": NoopAmphoraDriver}
    try:
        return Drivers(compute=compute[cw.compute_driver](calls),
                       network=network[cw.network_driver](calls),
                       amphora=amphora[cw.amphora_driver](calls), calls=calls)
    except KeyError as exc:
        raise ConfigError(f"[controller_worker]: unknown driver {exc.args[0]!r}.") from None
