"""The netns compute driver: an amphora is a pair of network namespaces on this host, with
the agent running in the management one (see drivers/netns/amphora_ns.py for the layout).

Build, status and delete are idempotent and keyed by the amphora id; delete leaves no
namespace, veth, process, address lease or file behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
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
from statera.wire.heartbeat import AgentHeartbeat

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
        # Where and how agents send heartbeats; set by the process wiring (cli).
        self.heartbeat: AgentHeartbeat | None = None

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
        _write(home / "agent.conf", (request.agent_config or self._agent_config(
            request.amphora_id, address, request.topology)).encode())
        names.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            ensure_namespace(self.ip, names.mgmt_ns)
            # The agent starts now, while the rest is plumbed: it binds its address before
            # eth0 holds it (IP_FREEBIND), so its interpreter start overlaps the ip calls.
            self._start_agent(home, names)
            ensure_namespace(self.ip, names.tenant_ns)
            plug_veth(self.ip, names.mgmt_veth, self.mgmt_bridge, names.mgmt_ns, "eth0",
                      names.mac(0), self.mtu)
            cidr = f"{address}/{self.prefixlen}"
            have = self.ip.in_ns(names.mgmt_ns, "-br", "addr", "show", "dev", "eth0")
            if cidr not in have:
                self.ip.in_ns(names.mgmt_ns, "addr", "add", cidr, "dev", "eth0")
            self.ip("netns", "exec", names.mgmt_ns, "sysctl", "-q", "-w",
                    "net.ipv4.conf.eth0.arp_notify=1")
            self.ip.in_ns(names.mgmt_ns, "link", "set", "eth0", "up")
            self._announce(names)
            self._pin_neighbours(names, address)
        except IpError as exc:
            raise TemporaryFailure(f"could not plumb amphora {request.amphora_id}: {exc}",
                                   delay=0.2) from exc
        return ComputeInstance(compute_id=request.amphora_id, status="ACTIVE",
                               lb_network_ip=address)

    def _agent_config(self, amphora_id: str, address: str, topology: str) -> str:
        """The agent's config file (and its heartbeat key file, 0600, beside it)."""
        home = self.amphora_dir(amphora_id)
        heartbeat: dict[str, object] = {}
        if self.heartbeat is not None:
            _write(home / "heartbeat.key", self.heartbeat.key_for(amphora_id).hex().encode())
            heartbeat = self.heartbeat.config_fields(str(home / "heartbeat.key"))
        return render_agent_config(AgentConfigFile(
            amphora_id=amphora_id, server_cert=str(home / "server.pem"),
            client_ca=str(home / "client_ca.pem"), base_path=str(home / "lb"),
            bind_host=address, haproxy_namespace=AmphoraNames(amphora_id).tenant_ns,
            topology=topology, **heartbeat))  # type: ignore[arg-type]

    def agent_config(self, compute_id: str, topology: str) -> str:
        """The agent config the amphora should run now (PUT /config pushes it)."""
        address = self.addresses.owners().get(compute_id)
        if address is None or not self.amphora_dir(compute_id).exists():
            raise StepFailed(f"amphora {compute_id} has no instance on this host")
        return self._agent_config(compute_id, address, topology)

    def _announce(self, names: AmphoraNames) -> None:
        """Gratuitous ARPs for the management address: it may have been a deleted amphora's
        a moment ago, and the host would send to that one's MAC until its neighbour entry
        went stale (~40 s of a failover spent unreachable). With arp_notify the kernel
        announces a MAC change, not a link that comes up before its bridge port forwards
        (that one is lost); so once the port forwards, eth0 changes its MAC and back."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            link = self.ip.json("-d", "link", "show", names.mgmt_veth)
            slave = (link[0].get("linkinfo", {}).get("info_slave_data", {}) if link else {})
            if slave.get("state") == "forwarding":
                break
            time.sleep(0.005)
        self.ip.in_ns(names.mgmt_ns, "link", "set", "eth0", "address", names.mac(0xFF))
        self.ip.in_ns(names.mgmt_ns, "link", "set", "eth0", "address", names.mac(0))

    def _pin_neighbours(self, names: AmphoraNames, address: str) -> None:
        """Permanent ARP entries for the management link, both ways: the host's address in
        the amphora, the amphora's on the host. Linux keeps one neighbour table for all
        namespaces, and past net.ipv4.neigh.default.gc_thresh3 (1024 by default) new entries
        are refused ("neighbor table overflow"): at ~200 amphorae the two entries each needs
        for its heartbeats and the agent calls, plus the tenant side's, filled it and
        heartbeats were dropped until amphorae were failed over as silent. Permanent entries
        do not count against that limit. Both MACs are fixed (the bridge's is pinned, the
        amphora's is derived from its id); an address reused by a later amphora is replaced
        with its MAC. Added after _announce: a MAC change flushes the link's entries."""
        host_mac = link_mac(self.mgmt_bridge)
        self.ip.in_ns(names.mgmt_ns, "neigh", "replace", str(self.addresses.host), "lladdr",
                      host_mac, "dev", "eth0", "nud", "permanent")
        self.ip("neigh", "replace", address, "lladdr", names.mac(0), "dev", self.mgmt_bridge,
                "nud", "permanent")

    def _start_agent(self, home: Path, names: AmphoraNames) -> None:
        """Spawn the agent unless the one the pid file names still runs (a retried build)."""
        pid = _read_pid(home / "agent.pid")
        if pid is None or not alive(pid):
            pid = spawn_in_ns(names.mgmt_ns, self.agent_command(home), home / "agent.log")
            (home / "agent.pid").write_text(str(pid))

    def status(self, compute_id: str) -> ComputeInstance:
        home = self.amphora_dir(compute_id)
        if not home.exists():
            return ComputeInstance(compute_id=compute_id, status="DELETED")
        address = self.addresses.owners().get(compute_id)
        healthy = self._healthy(compute_id, set(self.ip.namespaces()))
        return ComputeInstance(compute_id=compute_id, status="ACTIVE" if healthy else "ERROR",
                               lb_network_ip=address)

    def _healthy(self, compute_id: str, spaces: set[str]) -> bool:
        """Both namespaces exist, the agent runs, and every haproxy the agent started (a pid
        file it has not removed by stopping it) still runs. The health manager asks this of
        every amphora every second, so it sticks to plain os calls on strings (and alive()
        to /proc/<pid>/exe): with pathlib, glob and /proc/<pid>/stat, 200 amphorae cost
        ~70 ms of CPU per round on a loaded 2-core host; ~32 ms this way."""
        names = AmphoraNames(compute_id)
        if names.mgmt_ns not in spaces or names.tenant_ns not in spaces:
            return False
        home = os.path.join(self.state_dir, "amphorae", compute_id)
        pid = _pid_in(os.path.join(home, "agent.pid"))
        if pid is None or not alive(pid):
            return False
        lb_dir = os.path.join(home, "lb")
        try:
            lbs = os.listdir(lb_dir)
        except OSError:
            lbs = []
        for lb in lbs:
            pid_file = os.path.join(lb_dir, lb, "haproxy.pid")
            haproxy = _pid_in(pid_file)
            if haproxy is not None and not alive(haproxy) and os.path.exists(pid_file):
                return False
        return True

    def unhealthy(self, compute_ids: list[str]) -> list[str]:
        """Of ``compute_ids``, those whose instance is gone or broken (namespaces deleted,
        agent or haproxy dead): the health manager fails them over without waiting for
        their heartbeats to time out. One namespace listing for all of them."""
        spaces = set(self.ip.namespaces())
        return [c for c in compute_ids if not self._healthy(c, spaces)]

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
        address = self.addresses.owners().get(compute_id)
        if address is not None and self.ip.link_exists(self.mgmt_bridge):
            # Before the address is released: a later amphora taking it replaces the entry.
            self.ip("neigh", "del", address, "dev", self.mgmt_bridge, check_rc=False)
        self.addresses.release(compute_id)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(names.socket_dir, ignore_errors=True)
        if any(ns in self.ip.namespaces() for ns in (names.mgmt_ns, names.tenant_ns)):
            raise StepFailed(f"amphora {compute_id}: namespaces still present after delete")

    def instances(self) -> list[str]:
        """Amphorae with a home under this driver's state directory (only ours: other
        Statera instances on the host keep theirs elsewhere)."""
        homes = self.state_dir / "amphorae"
        return sorted(p.name for p in homes.iterdir() if p.is_dir()) if homes.exists() else []


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def link_mac(name: str) -> str:
    """The MAC address of a link in this process's (the root) namespace."""
    try:
        return Path(f"/sys/class/net/{name}/address").read_text().strip()
    except OSError as exc:
        raise TemporaryFailure(f"link {name} is missing: {exc}", delay=0.5) from exc


def _pid_in(path: str) -> int | None:
    """The first number in a pid file (haproxy writes one per line), or None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(fd, 64).split()[0])
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
