"""The agent's keepalived control: the check script (run for real with /bin/sh against pid
files), and the refusals that need no namespace. Starting keepalived in a namespace is
covered by tests/integration/agent/test_agent_vrrp.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from statera.agent.errors import AgentError, BadRequest, Forbidden, NotFound
from statera.agent.keepalived import (
    CHECK_SCRIPT,
    MAX_CONFIG_BYTES,
    KeepalivedManager,
    check_script_text,
)

LB1 = "7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"
LB2 = "0d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8"


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def _check(base: Path) -> int:
    script = base / "check.sh"
    script.write_text(check_script_text(base))
    return subprocess.run(["/bin/sh", str(script)], check=False).returncode


def _pidfile(base: Path, lb: str, pid: int) -> None:
    (base / lb).mkdir(exist_ok=True)
    (base / lb / "haproxy.pid").write_text(f"{pid}\n")


def test_check_script_passes_only_while_every_haproxy_lives(tmp_path: Path) -> None:
    assert _check(tmp_path) == 1  # no haproxy at all: nothing may hold the VIP
    _pidfile(tmp_path, LB1, os.getpid())
    assert _check(tmp_path) == 0
    _pidfile(tmp_path, LB2, _dead_pid())
    assert _check(tmp_path) == 1
    _pidfile(tmp_path, LB2, os.getpid())
    assert _check(tmp_path) == 0
    (tmp_path / LB2 / "haproxy.pid").write_text("")
    assert _check(tmp_path) == 1


@pytest.mark.parametrize("base", ["relative", "/a b", "/a;b", "/a$b", "/a'b", "/a\nb"])
def test_check_script_refuses_odd_base_paths(base: str) -> None:
    with pytest.raises(AgentError):
        check_script_text(Path(base))


def test_without_a_namespace_keepalived_is_refused(tmp_path: Path) -> None:
    k = KeepalivedManager(tmp_path)
    with pytest.raises(Forbidden):
        k.write_config(b"global_defs {}\n")
    with pytest.raises(Forbidden):
        k.start()
    with pytest.raises(Forbidden):
        k.reload()
    assert not (tmp_path / "vrrp").exists()
    k.stop()  # nothing running: nothing to do, no error


def test_bad_uploads_and_actions(tmp_path: Path) -> None:
    k = KeepalivedManager(tmp_path, namespace="stt-0000000000")
    with pytest.raises(BadRequest):
        k.write_config(b"x" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(BadRequest):
        k.write_config(b"global_defs {}\n\0")
    with pytest.raises(BadRequest):
        k.do("restart")
    with pytest.raises(NotFound):
        k.read_config()
    with pytest.raises(NotFound):
        k.start()  # no configuration yet
    assert not k.running()


def test_stale_pid_file_does_not_count(tmp_path: Path) -> None:
    k = KeepalivedManager(tmp_path, namespace="stt-0000000000")
    k.paths.directory.mkdir(parents=True)
    k.paths.pid.write_text(f"{os.getpid()}\n")  # alive, but not keepalived with our config
    assert k.pid() is None
    k.paths.pid.write_text(f"{_dead_pid()}\n")
    assert k.pid() is None
    assert k.check_script == tmp_path / CHECK_SCRIPT


# ---- the routes, through the agent's server (tests/unit/agent/conftest.py) -------------------

def test_vrrp_routes_answer_in_api_shape(agent_env) -> None:  # type: ignore[no-untyped-def]
    c = agent_env.client
    # That agent has no namespace: keepalived is refused with 403, never run on the host.
    r = c.put("/1.0/vrrp/upload", content=b"global_defs {}\n")
    assert r.status_code == 403 and r.json()["message"] == "Forbidden"
    assert c.put("/1.0/vrrp/start").status_code == 403
    r = c.put("/1.0/vrrp/restart")
    assert r.status_code == 400 and "unknown action" in r.json()["details"]
    assert c.put("/1.0/vrrp/stop").status_code == 202  # nothing running: nothing to stop
    assert c.get("/1.0/vrrp/upload").status_code == 405
    r = c.put("/1.0/vrrp/upload", content=b"x" * (MAX_CONFIG_BYTES + 1))
    assert r.status_code in (400, 413)
