"""The netns compute driver: an amphora is a pair of network namespaces on this host, with
the agent running in the management one (see drivers/netns/amphora_ns.py for the layout).

Build, status and delete are idempotent and keyed by the amphora id; delete leaves no
namespace, veth, process, address lease or file behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from statera.domain.errors import StepFailed, TemporaryFailure
from statera.drivers.compute.base import AmphoraBuild, ComputeInstance
from statera.drivers.netns.amphora_ns import (
    AmphoraNames,
    MgmtAddresses,
    alive,
    delete_namespace,
    ensure_namespace,
    plug_veth,
    spawn_in_ns,
    stop_pid,
    unplug_veth,
)
from statera.drivers.netns.ip import Ip, IpError
from statera.wire.agent import AgentConfigFile, render_agent_config

LOG = logging.getLogger(__name__)

# argv of the agent, given the amphora's directory (its config is <dir>/agent.conf).
AgentCommand = Callable[[Path], list[str]]


class NetnsComputeDriver:
    def __init__(self, *, state_dir: Path, mgmt_bridge: str, mgmt_cidr: str,
                 mgmt_host_address: str, agent_command: AgentCommand, mtu: int = 1500,
                 ip: Ip | None = None) -> None:
        self.state_dir = state_dir
        self.mgmt_bridge = mgmt_bridge
        self.prefixlen = int(mgmt_cidr.split("/")[1])
        self.agent_command = agent_command
        self.mtu = mtu
        self.ip = ip or Ip()
        self.addresses = MgmtAddresses(state_dir / "mgmt-addresses.json", mgmt_cidr,
                                       mgmt_host_address)

    def amphora_dir(self, amphora_id: str) -> Path:
        return self.state_dir / "amphorae" / amphora_id

    def build(self, request: AmphoraBuild) -> ComputeInstance:
        names = AmphoraNames(request.amphora_id)
        home = self.amphora_dir(request.amphora_id)
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        _write(home / "server.pem", request.server_pem)
        _write(home / "client_ca.pem", request.client_ca_pem)
        address = self.addresses.take(request.amphora_id)
        _write(home / "agent.conf", (request.agent_config or render_agent_config(AgentConfigFile(
            amphora_id=request.amphora_id, server_cert=str(home / "server.pem"),
            client_ca=str(home / "client_ca.pem"), base_path=str(home / "lb"),
            bind_host=address, haproxy_namespace=names.tenant_ns,
            topology=request.topology))).encode())
        names.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            ensure_namespace(self.ip, names.mgmt_ns)
            ensure_namespace(self.ip, names.tenant_ns)
            plug_veth(self.ip, names.mgmt_veth, self.mgmt_bridge, names.mgmt_ns, "eth0",
                      names.mac(0), self.mtu)
            cidr = f"{address}/{self.prefixlen}"
            have = self.ip.in_ns(names.mgmt_ns, "-br", "addr", "show", "dev", "eth0")
            if cidr not in have:
                self.ip.in_ns(names.mgmt_ns, "addr", "add", cidr, "dev", "eth0")
            self.ip.in_ns(names.mgmt_ns, "link", "set", "eth0", "up")
        except IpError as exc:
            raise TemporaryFailure(f"could not plumb amphora {request.amphora_id}: {exc}",
                                   delay=0.2) from exc
        pid = _read_pid(home / "agent.pid")
        if pid is None or not alive(pid):
            pid = spawn_in_ns(names.mgmt_ns, self.agent_command(home), home / "agent.log")
            (home / "agent.pid").write_text(str(pid))
        return ComputeInstance(compute_id=request.amphora_id, status="ACTIVE",
                               lb_network_ip=address)

    def status(self, compute_id: str) -> ComputeInstance:
        names = AmphoraNames(compute_id)
        home = self.amphora_dir(compute_id)
        if not home.exists():
            return ComputeInstance(compute_id=compute_id, status="DELETED")
        address = self.addresses.owners().get(compute_id)
        spaces = set(self.ip.namespaces())
        pid = _read_pid(home / "agent.pid")
        healthy = ({names.mgmt_ns, names.tenant_ns} <= spaces and pid is not None
                   and alive(pid))
        return ComputeInstance(compute_id=compute_id, status="ACTIVE" if healthy else "ERROR",
                               lb_network_ip=address)

    def delete(self, compute_id: str) -> None:
        names = AmphoraNames(compute_id)
        home = self.amphora_dir(compute_id)
        pid = _read_pid(home / "agent.pid")
        if pid is not None:
            stop_pid(pid)
        for index in range(8):
            unplug_veth(self.ip, names.tenant_veth(index))
        unplug_veth(self.ip, names.mgmt_veth)
        delete_namespace(self.ip, names.tenant_ns)
        delete_namespace(self.ip, names.mgmt_ns)
        self.addresses.release(compute_id)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(names.socket_dir, ignore_errors=True)
        if any(ns in self.ip.namespaces() for ns in (names.mgmt_ns, names.tenant_ns)):
            raise StepFailed(f"amphora {compute_id}: namespaces still present after delete")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
