"""A real ``statera up`` process for the client tests, and a runner for the stock
``openstack`` CLI.

``statera_up(**env)`` starts ``statera up`` (the binary next to ``sys.executable``) on a free
127.0.0.1 port with its own temporary state directory (SQLite database, noop drivers) and
waits until ``GET /`` answers. Every process it starts is terminated by PID when the test
ends (SIGTERM, then SIGKILL after a bounded wait).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.common import NOOP_DRIVERS
from bench.testbed import Testbed, missing_requirements

BIN = Path(sys.executable).parent
STATERA = str(BIN / "statera")
OPENSTACK = str(BIN / "openstack")
START_TIMEOUT = 30.0
CLI_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CliError(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(
            f"openstack {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}")


def _lower_priority() -> None:
    os.nice(10)


def _trace(what: str, since: float) -> None:
    """Durations, shown with a failing test's captured output."""
    print(f"[e2e] {what}: {time.monotonic() - since:.1f} s", file=sys.stderr)


_SAFE_ARG = re.compile(r"[A-Za-z0-9_./:=@,+%-]+")


def _split_marked(text: str, count: int) -> list[str] | None:
    parts = re.split(r"==STATERA-MARK-(\d+)==\n", text)
    # ['', '0', seg0, '1', seg1, ...]: the text between marker n-1 and n is command n's.
    if len(parts) != 2 * (count + 1) + 1:
        return None
    return [parts[2 * n] for n in range(1, count + 1)]


@dataclass
class CliResult:
    """One command's output in a batch."""

    args: list[str]
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return not self.stderr.strip()

    def json(self) -> Any:
        if not self.ok:
            raise AssertionError(f"openstack {' '.join(self.args)} failed: {self.stderr}")
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"openstack {' '.join(self.args)} printed non-JSON: "
                                 f"{self.stdout!r}") from exc

    def check(self) -> None:
        assert self.ok, f"openstack {' '.join(self.args)} failed: {self.stderr}"


@dataclass
class Pending:
    """A CLI command running in the background."""

    args: list[str]
    proc: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)

    def result(self) -> CliResult:
        try:
            out, err = self.proc.communicate(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        _trace(f"openstack {' '.join(self.args[:4])}…", self.started)
        if self.proc.returncode != 0 and not err.strip():
            err = f"(exit {self.proc.returncode})"
        return CliResult(self.args, out, err if self.proc.returncode != 0 else "")

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


@dataclass
class PendingBatch:
    """A batch of CLI commands running in the background."""

    commands: list[list[str]]
    proc: subprocess.Popen[str]
    started: float = field(default_factory=time.monotonic)

    def results(self) -> list[CliResult]:
        timeout = CLI_TIMEOUT * max(1, len(self.commands) // 4)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        outs = _split_marked(out, len(self.commands))
        errs = _split_marked(err, len(self.commands))
        if outs is None or errs is None:
            raise AssertionError(f"openstack batch output lost its markers (exit "
                                 f"{self.proc.returncode}):\nstdout: {out[-3000:]}\n"
                                 f"stderr: {err[-3000:]}")
        _trace(f"batch of {len(self.commands)} ({self.commands[0][:3]}…)", self.started)
        return [CliResult(argv, o, e) for argv, o, e in zip(self.commands, outs, errs,
                                                              strict=True)]


@dataclass
class Statera:
    """One running ``statera up``."""

    port: int
    state: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path
    background: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- users of the http_basic strategy, in the same database ----------------------------

    def add_users(self, *users: tuple[str, str, str, str]) -> None:
        """``statera user add NAME --project P --role R --password-stdin`` for each
        (name, password, project, role), all at once (each is a Python start-up)."""
        procs = []
        for name, password, project, role in users:
            argv = [STATERA, "user", "add", name, "--project", project, "--role", role,
                    "--password-stdin"]
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=self.env)
            self.background.append(proc)
            procs.append((proc, password))
        for proc, password in procs:
            out, _ = proc.communicate(password + "\n", timeout=60)
            assert proc.returncode == 0, out

    def add_users_in_process(self, *users: tuple[str, str, str, str]) -> None:
        """The same through ``statera.services.users`` (no process start-ups)."""
        from statera.config import load_settings
        from statera.db.database import Database
        from statera.services.users import add_user

        db = Database(load_settings(environ=self.env).database_url)
        try:
            for name, password, project, role in users:
                add_user(db, name, password, project, [role])
        finally:
            db.dispose()

    # ---- the stock CLI ----------------------------------------------------------------------

    def cli_base(self, user: tuple[str, str] | None = None) -> list[str]:
        if user is None:
            return ["--os-auth-type", "none", "--os-endpoint", self.url]
        return ["--os-auth-type", "http_basic", "--os-username", user[0],
                "--os-password", user[1], "--os-endpoint", self.url]

    def run_cli(self, *args: str, user: tuple[str, str] | None = None,
                timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run ``openstack <auth> <args>``; return the completed process (no check)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["PYTHONWARNINGS"] = "ignore"
        return subprocess.run([OPENSTACK, *self.cli_base(user), *args], capture_output=True,
                              text=True, env=env, timeout=timeout, check=False)

    def cli(self, *args: str, user: tuple[str, str] | None = None) -> Any:
        """Run ``openstack … <args> -f json`` (when the command prints anything) and return
        the parsed JSON, or None for commands that print nothing. Fails on a non-zero exit."""
        result = self.run_cli(*args, user=user)
        if result.returncode != 0:
            raise CliError(list(args), result)
        out = result.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"openstack {' '.join(args)} printed non-JSON: {out!r}") from exc

    def cli_start(self, *args: str, user: tuple[str, str] | None = None,
                  background: bool = True) -> Pending:
        """Start ``openstack <auth> <args>`` (collect with ``.result()``): independent
        commands overlap with the others. ``background`` runs it at a lower CPU priority, so
        that it does not slow down the commands the test waits for (the CLI's start-up is
        CPU-bound: seconds on 2 cores)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["PYTHONWARNINGS"] = "ignore"
        argv = [OPENSTACK, *self.cli_base(user), *args]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=self.state,
                                preexec_fn=_lower_priority if background else None)
        self.background.append(proc)
        return Pending(list(args), proc)

    def cli_batch(self, commands: list[list[str]],
                  user: tuple[str, str] | None = None) -> list[CliResult]:
        """Run several commands in one ``openstack`` process (its interactive mode, fed on
        stdin), each followed by a marker on stdout and stderr, so that the interpreter and
        plugin start-up (seconds) is paid once. A command failed iff it wrote to stderr.

        Interactive mode re-tokenizes each line twice (cmd2, then cliff's shlex), so only
        arguments made of shell-safe characters can go through it: JSON arguments (flavor and
        AZ profile data) must use :meth:`cli` or :meth:`cli_start`."""
        return self.cli_batch_start(commands, user).results()

    def cli_batch_start(self, commands: list[list[str]],
                        user: tuple[str, str] | None = None,
                        background: bool = False) -> PendingBatch:
        """:meth:`cli_batch` without waiting; ``.results()`` waits for it. ``background``: at
        a lower CPU priority (see :meth:`cli_start`)."""
        mark = self.state / "mark.sh"
        if not mark.exists():
            mark.write_text('#!/bin/sh\necho "$1"\necho "$1" >&2\n')
            mark.chmod(0o755)
        lines = [f"shell {mark} ==STATERA-MARK-0=="]
        for n, argv in enumerate(commands, start=1):
            for arg in argv:
                if not _SAFE_ARG.fullmatch(arg):
                    raise ValueError(f"argument {arg!r} cannot go through interactive mode")
            lines.append(" ".join(argv))
            lines.append(f"shell {mark} ==STATERA-MARK-{n}==")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", OS_ENDPOINT=self.url)
        if user is None:
            env["OS_AUTH_TYPE"] = "none"
        else:
            env.update(OS_AUTH_TYPE="http_basic", OS_USERNAME=user[0], OS_PASSWORD=user[1])
        proc = subprocess.Popen([OPENSTACK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=self.state,
                                preexec_fn=_lower_priority if background else None)
        self.background.append(proc)
        # A few kB: fits the pipe, so the batch runs on while the test does other things.
        assert proc.stdin is not None
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.close()
        proc.stdin = None  # communicate() then only reads
        return PendingBatch(commands, proc)

    # ---- plain HTTP --------------------------------------------------------------------------

    def http(self, user: tuple[str, str] | None = None,
             project: str | None = None) -> httpx.Client:
        headers = {"X-Project-Id": project} if project else {}
        return httpx.Client(base_url=self.url, auth=user, headers=headers, timeout=30)

    def wait_until(self, what: str, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def statera_up(tmp_path: Path) -> Iterator[Callable[..., Statera]]:
    """Factory: ``statera_up(**env)`` → a running Statera (env overrides ``STATERA_*``)."""
    started: list[subprocess.Popen[bytes]] = []
    servers: list[Statera] = []

    def start(**extra: str) -> Statera:
        began = time.monotonic()
        port = free_port()
        state = tmp_path / f"state-{len(started)}"
        state.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STATERA_")}
        env.update({
            "STATERA_DEFAULT__STATE_PATH": str(state),
            "STATERA_API_SETTINGS__BIND_HOST": "127.0.0.1",
            "STATERA_API_SETTINGS__BIND_PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            **NOOP_DRIVERS,
        })
        env.update(extra)
        log = state / "statera-up.log"
        placeholder = Statera(port=port, state=state, env=env, proc=None, log=log)  # type: ignore[arg-type]
        servers.append(placeholder)
        with log.open("wb") as out:
            proc = subprocess.Popen([STATERA, "up"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        placeholder.proc = proc
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"statera up exited {proc.returncode}:\n"
                                     f"{placeholder.log_tail()}")
            try:
                if httpx.get(f"{placeholder.url}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"statera up did not answer within {START_TIMEOUT} s:\n"
                                     f"{placeholder.log_tail()}")
            time.sleep(0.05)
        _trace("statera up answering", began)
        return placeholder

    yield start
    for s in servers:
        for child in s.background:  # CLI commands a failed test left running
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
    for proc in started:
        _stop(proc)


def open_testbed(tmp_path_factory: pytest.TempPathFactory, name: str,
                **options: Any) -> Iterator[Testbed]:
    """Yield a real data plane (bench/testbed.py, ``Testbed.start`` options) and remove it
    afterwards; skips where it cannot be built, fails instead in CI. For module fixtures:
    ``yield from open_testbed(tmp_path_factory, "name", extra_conf=...)``."""
    problem = missing_requirements()
    if problem:
        if os.environ.get("CI"):
            raise AssertionError(f"the data-plane tests {problem} in CI")
        pytest.skip(problem)
    testbed = Testbed.start(Path(tmp_path_factory.mktemp(name)), **options)
    try:
        yield testbed
    finally:
        testbed.close()


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A real data plane shared by the tests of one module."""
    yield from open_testbed(tmp_path_factory, "dataplane")
