"""One namespace amphora on this host: names, files and the steps to make or remove it.

An amphora is two namespaces, as upstream splits a VM: ``stm-<key>`` (management: the agent,
on the lb-mgmt-net bridge) and ``stt-<key>`` (tenant: haproxy and the VIP). ``<key>`` is the
first 10 hex digits of the amphora id. Links on the host are ``sv<key>m`` (management veth)
and ``sb<key><n>`` (tenant veths, one per plugged network).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from statera.domain.errors import StepFailed
from statera.drivers.netns.ip import Ip, IpError, ours_ns

_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def key_of(amphora_id: str) -> str:
    if not _UUID.match(amphora_id):
        raise StepFailed(f"not an amphora id: {amphora_id!r}")
    return amphora_id.replace("-", "")[:10]


@dataclass(frozen=True)
class AmphoraNames:
    amphora_id: str

    @property
    def key(self) -> str:
        return key_of(self.amphora_id)

    @property
    def mgmt_ns(self) -> str:
        return f"stm-{self.key}"

    @property
    def tenant_ns(self) -> str:
        return f"stt-{self.key}"

    @property
    def mgmt_veth(self) -> str:
        return f"sv{self.key}m"

    @property
    def socket_dir(self) -> Path:
        """Short home for haproxy's unix sockets (their paths are limited to ~100 bytes)."""
        return Path("/run/statera") / self.key

    def tenant_veth(self, index: int) -> str:
        return f"sb{self.key}{index}"

    def mac(self, index: int) -> str:
        """A stable, locally administered MAC per (amphora, interface)."""
        raw = self.key[:8] + f"{index % 256:02x}"
        return ":".join(["fa"] + [raw[i:i + 2] for i in range(0, 10, 2)])


class MgmtAddresses:
    """Management addresses handed to amphorae, kept in a small locked JSON file."""

    def __init__(self, path: Path, cidr: str, host_address: str) -> None:
        self.path = path
        self.net = ipaddress.ip_network(cidr)
        self.host = ipaddress.ip_address(host_address)

    @contextlib.contextmanager
    def _locked(self):  # type: ignore[no-untyped-def]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield data
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)

    def take(self, amphora_id: str) -> str:
        with self._locked() as data:
            if amphora_id in data:
                return str(data[amphora_id])
            used = set(data.values()) | {str(self.host)}
            for host in self.net.hosts():
                if str(host) not in used:
                    data[amphora_id] = str(host)
                    return str(host)
        raise StepFailed(f"no free management address left in {self.net}")

    def release(self, amphora_id: str) -> None:
        with self._locked() as data:
            data.pop(amphora_id, None)

    def owners(self) -> dict[str, str]:
        with self._locked() as data:
            return dict(data)


def ensure_namespace(ip: Ip, ns: str) -> None:
    if not ours_ns(ns):
        raise StepFailed(f"{ns!r} is not a Statera namespace")
    if ns not in ip.namespaces():
        try:
            ip("netns", "add", ns)
        except IpError as exc:
            if "exists" not in exc.stderr:
                raise
    ip.in_ns(ns, "link", "set", "lo", "up")


def delete_namespace(ip: Ip, ns: str) -> None:
    """Kill every process still in the namespace, then delete it. No error if gone."""
    if ns not in ip.namespaces():
        return
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in (int(p) for p in pids.split() if p.isdigit()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(IpError):
        ip("netns", "del", ns)


def plug_veth(ip: Ip, host_end: str, bridge: str, ns: str, inner: str, mac: str,
              mtu: int) -> None:
    """A veth pair: ``host_end`` on ``bridge``, ``inner`` (with ``mac``) in ``ns``. Idempotent."""
    if not ip.link_exists(host_end):
        ip("link", "add", host_end, "mtu", str(mtu), "type", "veth", "peer", "name", inner,
           "netns", ns)
    ip.in_ns(ns, "link", "set", inner, "address", mac, "mtu", str(mtu))
    ip("link", "set", host_end, "master", bridge, "mtu", str(mtu), "up")


def unplug_veth(ip: Ip, host_end: str) -> None:
    if ip.link_exists(host_end):
        with contextlib.suppress(IpError):
            ip("link", "del", host_end)


def spawn_in_ns(ns: str, argv: list[str], log_path: Path) -> int:
    """Start a long-lived process inside ``ns``, detached from us; returns its pid."""
    if not ours_ns(ns):
        raise StepFailed(f"{ns!r} is not a Statera namespace")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (or a process on its way out) has no memory left, so no executable: its
    # /proc/<pid>/exe link is gone. Reading it costs a fraction of /proc/<pid>/stat, which
    # matters to the health manager asking about every amphora's processes every second.
    try:
        os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    except OSError:
        pass
    return True


def stop_pid(pid: int, timeout: float = 3.0) -> None:
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
