"""The one place the agent runs other programs. Never through a shell; the argument list is
logged, so callers never put secrets on a command line (they go through files)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def netns_prefix(namespace: str) -> list[str]:
    return ["ip", "netns", "exec", namespace] if namespace else []


def run(argv: Sequence[str], timeout: float = 30.0) -> Result:
    LOG.debug("running %s", " ".join(argv))
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False,
                              env=_clean_env())
    except subprocess.TimeoutExpired:
        return Result(124, f"{argv[0]} timed out after {timeout:.0f} s")
    except OSError as exc:
        return Result(127, f"{argv[0]}: {exc.strerror}")
    return Result(done.returncode, done.stdout.decode("utf-8", "replace"))


def spawn(argv: Sequence[str], log: IO[bytes], cwd: Path | None = None,
          ) -> subprocess.Popen[bytes]:
    """Start a long-running child in its own session, so signals meant for the agent (a
    Ctrl-C, a restart) never reach it."""
    LOG.debug("starting %s", " ".join(argv))
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=_clean_env(), close_fds=True, cwd=cwd)


def fire_and_forget(argv: Sequence[str]) -> None:
    """Start a short helper (gratuitous ARP) without waiting; a thread reaps it."""
    import threading

    LOG.debug("starting %s", " ".join(argv))
    try:
        child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, env=_clean_env(), close_fds=True)
    except OSError as exc:
        LOG.warning("could not start %s: %s", argv[0], exc.strerror)
        return
    threading.Thread(target=child.wait, name="reap", daemon=True).start()


def alive(pid: int) -> bool:
    """The process runs (a zombie or a dead one does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in (b"Z", b"X")


def runs_config(pid: int, config: Path) -> bool:
    """``pid`` is alive and was started with ``config`` on its command line (a pid file's
    pid may have been reused by another program since)."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(config) in cmdline


def tail(path: Path, limit: int = 4000) -> str:
    """The end of a log file, for an error message."""
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _clean_env() -> dict[str, str]:
    # A child must not talk to systemd as if it were the agent's own unit.
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS",
                                                            "LISTEN_PID")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env
