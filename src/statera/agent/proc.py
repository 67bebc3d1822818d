"""The one place the agent runs other programs. Never through a shell; the argument list is
logged, so callers never put secrets on a command line (they go through files)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


def _clean_env() -> dict[str, str]:
    # A child must not talk to systemd as if it were the agent's own unit.
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS",
                                                            "LISTEN_PID")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env
