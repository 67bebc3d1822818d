"""HAProxy process control: one master-worker HAProxy per load balancer.

Each load balancer has a directory ``<base>/<lb_id>/`` (0700) holding ``haproxy.cfg``, the
master's pid file, its master CLI socket ``master.sock`` (0600) and ``servers-state``. HAProxy
runs as ``[ip netns exec <ns>] haproxy -Ws -S <dir>/master.sock -f <cfg> -p <pid>``, a child of
the agent in its own session; an agent that restarts adopts the running masters through
their pid files.

A reload sends SIGUSR2 to the master, which re-executes itself, starts new workers that take
over the listening sockets through the master (no unbind window, so no connection is
refused) and soft-stops the old ones, which finish their connections. Before it, the servers'
state is dumped to ``servers-state`` so a config that loads it keeps health and weights.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from statera.agent import proc
from statera.agent.bodies import FrontendStats
from statera.agent.errors import AgentError, BadRequest, NotFound
from statera.agent.files import fsync_dir, md5_hex, write_atomic, write_file
from statera.wire.agent_core import is_uuid

LOG = logging.getLogger(__name__)
MAX_CONFIG_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class LbPaths:
    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def pid(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def master_socket(self) -> Path:
        return self.directory / "master.sock"

    @property
    def servers_state(self) -> Path:
        return self.directory / "servers-state"

    @property
    def log(self) -> Path:
        return self.directory / "haproxy.log"


@dataclass(frozen=True)
class ProcTable:
    """What the master CLI's ``show proc`` says."""

    master_pid: int
    reloads: int
    failed: int
    workers: tuple[tuple[int, int], ...]       # (pid, reloads survived), current workers
    old_workers: tuple[tuple[int, int], ...] = ()


_MASTER_RE = re.compile(r"^(\d+)\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?")
_WORKER_RE = re.compile(r"^(\d+)\s+worker\s+(\d+)")


def parse_show_proc(text: str) -> ProcTable:
    master_pid = reloads = failed = 0
    sections: dict[str, list[tuple[int, int]]] = {"workers": [], "old workers": []}
    current = ""
    for line in text.splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
            continue
        if m := _MASTER_RE.match(line):
            master_pid, reloads, failed = int(m[1]), int(m[2]), int(m[3] or 0)
        elif (m := _WORKER_RE.match(line)) and current in sections:
            sections[current].append((int(m[1]), int(m[2])))
    return ProcTable(master_pid, reloads, failed, tuple(sections["workers"]),
                     tuple(sections["old workers"]))


def parse_frontend_stats(csv_text: str) -> list[FrontendStats]:
    """Frontend rows of ``show stat`` (CSV) as FrontendStats."""
    text = csv_text.lstrip("# ")
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("svname") != "FRONTEND":
            continue
        out.append(FrontendStats(
            name=row.get("pxname", ""), bytes_in=_int(row.get("bin")),
            bytes_out=_int(row.get("bout")), active_connections=_int(row.get("scur")),
            total_connections=_int(row.get("stot")), request_errors=_int(row.get("ereq")),
            status=row.get("status", "")))
    return out


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def master_cli(sock_path: Path, command: str, timeout: float = 5.0) -> str:
    """One command on a master CLI socket; the master answers and closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        _connect_unix(s, sock_path)
        s.sendall(command.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


@dataclass
class HaproxyManager:
    base_path: Path
    haproxy_cmd: str = "/usr/sbin/haproxy"
    namespace: str = ""
    start_timeout: float = 10.0
    reload_timeout: float = 10.0
    stop_timeout: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _version: str | None = None

    # ---- paths and ids --------------------------------------------------------------------

    def paths(self, lb_id: str) -> LbPaths:
        if not is_uuid(lb_id):
            raise BadRequest("Invalid load balancer id", "ids are UUIDs")
        return LbPaths(self.base_path / lb_id.lower())

    @contextlib.contextmanager
    def locked(self, lb_id: str) -> Iterator[LbPaths]:
        paths = self.paths(lb_id)
        with self._guard:
            lock = self._locks.setdefault(paths.directory.name, threading.Lock())
        with lock:
            yield paths

    def lb_ids(self) -> list[str]:
        if not self.base_path.is_dir():
            return []
        return sorted(d.name for d in self.base_path.iterdir()
                      if is_uuid(d.name) and (d / "haproxy.cfg").exists())

    def version(self) -> str:
        if self._version is None:
            out = proc.run([self.haproxy_cmd, "-v"], timeout=10).output
            m = re.search(r"version (\S+)", out)
            self._version = m[1] if m else "unknown"
        return self._version

    # ---- configuration --------------------------------------------------------------------

    def write_config(self, lb_id: str, data: bytes) -> str:
        """Validate and install a new haproxy.cfg; the old one stays if it is refused."""
        if len(data) > MAX_CONFIG_BYTES:
            raise BadRequest("Invalid request", "the configuration is too large")
        with self.locked(lb_id) as paths:
            self.base_path.mkdir(mode=0o700, parents=True, exist_ok=True)
            paths.directory.mkdir(mode=0o700, exist_ok=True)
            candidate = paths.directory / "haproxy.cfg.new"
            write_file(candidate, data, mode=0o600)
            check = proc.run([*proc.netns_prefix(self.namespace), self.haproxy_cmd, "-c",
                              "-f", str(candidate)], timeout=60)
            if not check.ok:
                candidate.unlink(missing_ok=True)
                if not paths.config.exists():
                    shutil.rmtree(paths.directory, ignore_errors=True)
                raise BadRequest("Invalid request", check.output.strip())
            os.replace(candidate, paths.config)
            fsync_dir(paths.directory)
        LOG.info("configuration of load balancer %s installed", lb_id)
        return md5_hex(data)

    def read_config(self, lb_id: str) -> bytes:
        path = self.paths(lb_id).config
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound("Not Found", f"no configuration for load balancer {lb_id}") from None

    # ---- process state --------------------------------------------------------------------

    def master_pid(self, lb_id: str) -> int | None:
        """The running master's pid, or None. A pid file of a dead process (or of a pid
        reused since) does not count."""
        paths = self.paths(lb_id)
        child = self._children.get(paths.directory.name)
        if child is not None and child.poll() is None:
            return child.pid
        try:
            pid = int(paths.pid.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if proc.runs_config(pid, paths.config) else None

    def running(self, lb_id: str) -> bool:
        return self.master_pid(lb_id) is not None

    def show_proc(self, lb_id: str) -> ProcTable:
        return parse_show_proc(master_cli(self.paths(lb_id).master_socket, "show proc"))

    # ---- actions --------------------------------------------------------------------------

    def start(self, lb_id: str) -> None:
        with self.locked(lb_id) as paths:
            self._start(lb_id, paths)

    def _start(self, lb_id: str, paths: LbPaths) -> None:
        if self.master_pid(lb_id) is not None:
            return
        if not paths.config.exists():
            raise NotFound("Not Found", f"no configuration for load balancer {lb_id}")
        paths.master_socket.unlink(missing_ok=True)
        # The master socket is named relative to the directory haproxy starts in: a socket
        # path is limited to 107 bytes, and base paths can be deep.
        argv = [*proc.netns_prefix(self.namespace), self.haproxy_cmd, "-Ws",
                "-S", f"unix@{paths.master_socket.name},mode,600", "-f", str(paths.config),
                "-p", str(paths.pid)]
        with open(paths.log, "wb") as log:
            os.chmod(paths.log, 0o600)
            child = proc.spawn(argv, log, cwd=paths.directory)
        self._children[paths.directory.name] = child
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                self._children.pop(paths.directory.name, None)
                raise AgentError("Error starting haproxy", proc.tail(paths.log))
            table = self._try_show_proc(paths)
            if table is not None and table.workers:
                LOG.info("haproxy of load balancer %s started (pid %d)", lb_id, child.pid)
                return
            self.sleep(0.01)
        raise AgentError("Error starting haproxy", "no worker came up in time")

    def _try_show_proc(self, paths: LbPaths) -> ProcTable | None:
        try:
            return parse_show_proc(master_cli(paths.master_socket, "show proc", timeout=2))
        except OSError:
            return None

    def reload(self, lb_id: str) -> None:
        with self.locked(lb_id) as paths:
            pid = self.master_pid(lb_id)
            if pid is None:
                self._start(lb_id, paths)
                return
            self._save_state(paths)
            before = self._try_show_proc(paths)
            old = {w[0] for w in before.workers} if before else set()
            os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + self.reload_timeout
            while time.monotonic() < deadline:
                self.sleep(0.01)
                table = self._try_show_proc(paths)
                if table is None or before is None or table.reloads <= before.reloads:
                    continue
                if table.failed > before.failed:
                    raise AgentError("Error reloading haproxy", proc.tail(paths.log))
                if any(w_pid not in old and n == 0 for w_pid, n in table.workers):
                    LOG.info("haproxy of load balancer %s reloaded", lb_id)
                    return
            raise AgentError("Error reloading haproxy", "no new worker came up in time")

    def _save_state(self, paths: LbPaths) -> None:
        try:
            state = master_cli(paths.master_socket, "@1 show servers state", timeout=5)
        except OSError as exc:
            LOG.warning("could not save the servers' state: %s", exc)
            return
        if state.startswith("1\n"):
            write_atomic(paths.servers_state, state.encode(), mode=0o600)

    def stop(self, lb_id: str) -> None:
        with self.locked(lb_id) as paths:
            self._stop(lb_id, paths)

    def _stop(self, lb_id: str, paths: LbPaths) -> None:
        pid = self.master_pid(lb_id)
        child = self._children.pop(paths.directory.name, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, child, self.stop_timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, child, self.stop_timeout)
            LOG.info("haproxy of load balancer %s stopped", lb_id)
        elif child is not None:
            child.wait()
        paths.pid.unlink(missing_ok=True)
        paths.master_socket.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, child: subprocess.Popen[bytes] | None,
                   timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child is not None and child.pid == pid:
                if child.poll() is not None:
                    return True
            elif not proc.alive(pid):
                return True
            self.sleep(0.02)
        return False

    def remove(self, lb_id: str) -> None:
        """Stop haproxy and remove every file of the load balancer; no error if gone."""
        with self.locked(lb_id) as paths:
            self._stop(lb_id, paths)
            shutil.rmtree(paths.directory, ignore_errors=True)

    def stats(self, lb_id: str) -> list[FrontendStats]:
        paths = self.paths(lb_id)
        if self.master_pid(lb_id) is None:
            raise NotFound("Not Found", f"haproxy of load balancer {lb_id} is not running")
        try:
            return parse_frontend_stats(master_cli(paths.master_socket, "@1 show stat"))
        except OSError as exc:
            raise AgentError("Error reading statistics", str(exc)) from None


def _connect_unix(s: socket.socket, path: Path) -> None:
    # A socket path is limited to 107 bytes; a deep base path goes through a directory fd.
    if len(os.fsencode(path)) < 100:
        s.connect(str(path))
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        s.connect(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)
