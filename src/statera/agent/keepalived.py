"""keepalived process control: VRRP of an ACTIVE_STANDBY amphora (API 1.0 ``/vrrp/...``).

One keepalived per amphora, VRRP subsystem only, in the tenant namespace (where the VIP
interface is), as a child of the agent in its own session: ``ip netns exec <ns> keepalived
-n -P -l -G -f <dir>/keepalived.conf -p <dir>/keepalived.pid -r <dir>/vrrp.pid``. Its files
live in ``<base>/vrrp/`` (0700): the config, both pid files, its log, and the check script.

* upload: the controller's keepalived.conf is written beside the live one, checked with
  ``keepalived -t`` in the namespace (it needs the interfaces), then renamed into place; a
  refused file leaves the old one. The check script is (re)written first, since the config
  names it and ``-t`` checks that it is safe to run as root.
* start: no-op when running. reload: SIGHUP (keepalived re-reads its config and keeps the
  state of instances that stay), or start when not running. stop: SIGTERM, so a MASTER
  sends its priority-0 advert and the peer takes over at once (a planned switchover), then
  SIGKILL if it lingers.

The check script fails unless every load balancer's haproxy master of this amphora (the
pids in ``<base>/<lb_id>/haproxy.pid``) is alive; keepalived runs it as root every
``interval`` seconds and drops the VIP after ``fall`` failures.

Without a configured namespace the agent refuses to run keepalived: it adds and removes
addresses, and must never do that outside the amphora's own namespace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from statera.agent import proc
from statera.agent.errors import AgentError, BadRequest, Forbidden, NotFound
from statera.agent.files import fsync_dir, md5_hex, write_atomic, write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

LOG = logging.getLogger(__name__)
MAX_CONFIG_BYTES = 256 * 1024
ACTIONS = ("start", "stop", "reload")
# Where the check script lives, relative to the agent's base path. The controller's
# keepalived.conf names it (see KeepalivedOptions.check_script), so this is part of the
# amphora's layout: change both together.
CHECK_SCRIPT = "vrrp/check_haproxy.sh"

_CHECK_SCRIPT_TEXT = """#!/bin/sh
# Written by the Statera amphora agent; keepalived runs it (vrrp_script). It fails unless
# every load balancer's haproxy master on this amphora is alive.
found=0
for pidfile in {base}/*/haproxy.pid; do
    [ -f "$pidfile" ] || continue
    read -r pid < "$pidfile" || exit 1
    kill -0 "$pid" 2>/dev/null || exit 1
    found=1
done
[ "$found" = 1 ]
"""


def check_script_text(base_path: Path) -> str:
    base = str(base_path)
    # The base path is the operator's; still, it goes into a shell script unquoted (the
    # glob must expand), so only a plain absolute path is accepted.
    if not base.startswith("/") or not all(c.isalnum() or c in "/._-" for c in base):
        raise AgentError("Invalid agent configuration",
                         "base_path must be a plain absolute path for the VRRP check script")
    return _CHECK_SCRIPT_TEXT.format(base=base.rstrip("/") or "/")


@dataclass(frozen=True)
class VrrpPaths:
    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "keepalived.conf"

    @property
    def pid(self) -> Path:
        return self.directory / "keepalived.pid"

    @property
    def vrrp_pid(self) -> Path:
        return self.directory / "vrrp.pid"

    @property
    def log(self) -> Path:
        return self.directory / "keepalived.log"


@dataclass
class KeepalivedManager:
    base_path: Path
    namespace: str = ""
    keepalived_cmd: str = "/usr/sbin/keepalived"
    start_timeout: float = 10.0
    stop_timeout: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    _child: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def paths(self) -> VrrpPaths:
        return VrrpPaths(self.base_path / "vrrp")

    @property
    def check_script(self) -> Path:
        return self.base_path / CHECK_SCRIPT

    def _require_namespace(self) -> None:
        if not self.namespace:
            raise Forbidden("Forbidden", "no haproxy_namespace is configured; the agent does "
                                         "not run keepalived outside it")

    def _in_ns(self, *argv: str) -> list[str]:
        return [*proc.netns_prefix(self.namespace), *argv]

    # ---- configuration --------------------------------------------------------------------

    def write_config(self, data: bytes) -> str:
        """Check and install a new keepalived.conf (and the check script it names); the old
        config stays if the new one is refused. Returns the config's md5 (an ETag)."""
        self._require_namespace()
        if len(data) > MAX_CONFIG_BYTES:
            raise BadRequest("Invalid request", "the configuration is too large")
        if b"\0" in data:
            raise BadRequest("Invalid request", "the configuration holds a NUL byte")
        with self._lock:
            paths = self.paths
            self.base_path.mkdir(mode=0o700, parents=True, exist_ok=True)
            paths.directory.mkdir(mode=0o700, exist_ok=True)
            write_atomic(self.check_script, check_script_text(self.base_path).encode(),
                         mode=0o700)
            candidate = paths.directory / "keepalived.conf.new"
            write_file(candidate, data, mode=0o600)
            check = proc.run(self._in_ns(self.keepalived_cmd, "-t", "-f", str(candidate)),
                             timeout=30)
            if not check.ok:
                candidate.unlink(missing_ok=True)
                raise BadRequest("Invalid keepalived configuration",
                                 check.output.strip()[-4000:])
            os.replace(candidate, paths.config)
            fsync_dir(paths.directory)
        LOG.info("keepalived configuration installed")
        return md5_hex(data)

    def read_config(self) -> bytes:
        try:
            return self.paths.config.read_bytes()
        except FileNotFoundError:
            raise NotFound("Not Found", "no keepalived configuration") from None

    # ---- process state --------------------------------------------------------------------

    def pid(self) -> int | None:
        """The running keepalived's (parent) pid, or None; a pid file left by a dead process,
        or naming a pid reused since, does not count."""
        child = self._child
        if child is not None and child.poll() is None:
            return child.pid
        try:
            pid = int(self.paths.pid.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if proc.runs_config(pid, self.paths.config) else None

    def running(self) -> bool:
        return self.pid() is not None

    # ---- actions --------------------------------------------------------------------------

    def do(self, action: str) -> None:
        if action not in ACTIONS:
            raise BadRequest("Invalid Request", f"unknown action {action!r}")
        getattr(self, action)()

    def start(self) -> None:
        self._require_namespace()
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self.pid() is not None:
            return
        paths = self.paths
        if not paths.config.exists():
            raise NotFound("Not Found", "no keepalived configuration")
        paths.pid.unlink(missing_ok=True)
        paths.vrrp_pid.unlink(missing_ok=True)
        argv = self._in_ns(self.keepalived_cmd, "--dont-fork", "--vrrp", "--log-console",
                           "--no-syslog", "--use-file", str(paths.config),
                           "--pid", str(paths.pid), "--vrrp_pid", str(paths.vrrp_pid))
        with open(paths.log, "ab") as log:
            os.chmod(paths.log, 0o600)
            child = proc.spawn(argv, log, cwd=paths.directory)
        self._child = child
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                self._child = None
                raise AgentError("Error starting keepalived", proc.tail(paths.log))
            if _pid_in(paths.vrrp_pid) is not None:
                LOG.info("keepalived started (pid %d)", child.pid)
                return
            self.sleep(0.01)
        raise AgentError("Error starting keepalived", "its VRRP process did not come up")

    def reload(self) -> None:
        self._require_namespace()
        with self._lock:
            pid = self.pid()
            if pid is None:
                self._start()
                return
            os.kill(pid, signal.SIGHUP)
        LOG.info("keepalived reloading its configuration")

    def stop(self) -> None:
        with self._lock:
            pid = self.pid()
            child, self._child = self._child, None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                if not self._wait_gone(pid, child):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    self._wait_gone(pid, child)
                LOG.info("keepalived stopped")
            elif child is not None:
                child.wait()
            self.paths.pid.unlink(missing_ok=True)
            self.paths.vrrp_pid.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, child: subprocess.Popen[bytes] | None) -> bool:
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            if child is not None and child.pid == pid:
                if child.poll() is not None:
                    return True
            elif not proc.alive(pid):
                return True
            self.sleep(0.02)
        return False


def _pid_in(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if proc.alive(pid) else None
