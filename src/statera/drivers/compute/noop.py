"""The noop compute driver: records calls and reports instances as ACTIVE."""

from __future__ import annotations

import ipaddress
import zlib

from statera.drivers.compute.base import AmphoraBuild, ComputeInstance
from statera.drivers.noop_log import CallLog


class NoopComputeDriver:
    def __init__(self, calls: CallLog) -> None:
        self.calls = calls

    def build(self, request: AmphoraBuild) -> ComputeInstance:
        self.calls.record("compute", "build", amphora_id=request.amphora_id,
                          topology=request.topology)
        return ComputeInstance(compute_id=request.amphora_id, status="ACTIVE",
                               lb_network_ip=_fake_ip(request.amphora_id))

    def status(self, compute_id: str) -> ComputeInstance:
        self.calls.record("compute", "status", compute_id=compute_id)
        return ComputeInstance(compute_id=compute_id, status="ACTIVE",
                               lb_network_ip=_fake_ip(compute_id))

    def delete(self, compute_id: str) -> None:
        self.calls.record("compute", "delete", compute_id=compute_id)

    def agent_config(self, compute_id: str, topology: str) -> str:
        self.calls.record("compute", "agent_config", compute_id=compute_id)
        return ""

    def unhealthy(self, compute_ids: list[str]) -> list[str]:
        return []

    def instances(self) -> list[str]:
        return []  # noop builds nothing, so there is nothing to sweep


def _fake_ip(key: str) -> str:
    # A stable address from the documentation range, as upstream's noop driver reports one.
    return str(ipaddress.ip_address("198.51.100.0") + (zlib.crc32(key.encode()) % 254) + 1)
