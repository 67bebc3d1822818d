"""HAProxy process control: parsing the master CLI, and the real binary on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import pytest

from statera.agent.errors import AgentError, BadRequest, NotFound
from statera.agent.haproxy import HaproxyManager, parse_frontend_stats, parse_show_proc
from tests.unit.agent.conftest import HAPROXY, free_port, haproxy_cfg, kill_haproxies

SHOW_PROC = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
4665            master          2 [failed: 1]   0d00h10m07s     2.6.12-1+deb12u4
# workers
25594           worker          0               0d00h00m01s     2.6.12-1+deb12u4
# old workers
4677            worker          1               0d00h00m09s     2.6.12-1+deb12u4
# programs

"""

SHOW_STAT = """\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,status
fe-1,FRONTEND,,,3,5,100,42,1000,2000,0,0,4,,OPEN
be-1,srv1,0,0,0,1,,7,10,20,,0,,0,UP
be-1,BACKEND,0,0,0,1,10,7,10,20,0,0,,0,UP
"""


def test_parse_show_proc() -> None:
    table = parse_show_proc(SHOW_PROC)
    assert (table.master_pid, table.reloads, table.failed) == (4665, 2, 1)
    assert table.workers == ((25594, 0),)
    assert table.old_workers == ((4677, 1),)
    assert parse_show_proc("").workers == ()


def test_parse_frontend_stats() -> None:
    (fe,) = parse_frontend_stats(SHOW_STAT)
    assert (fe.name, fe.active_connections, fe.total_connections) == ("fe-1", 3, 42)
    assert (fe.bytes_in, fe.bytes_out, fe.request_errors, fe.status) == (1000, 2000, 4, "OPEN")


@pytest.fixture
def manager(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed")
    m = HaproxyManager(tmp_path / "base", HAPROXY, start_timeout=5, reload_timeout=5)
    try:
        yield m
    finally:
        for lb in m.lb_ids():
            m.stop(lb)
        kill_haproxies(tmp_path / "base")


def test_ids_must_be_uuids(manager: HaproxyManager) -> None:
    for bad in ("../x", "", "a" * 36, "5f0c8a3e-1d2b-4c3d-9e4f-5a6b7c8d9e0/"):
        with pytest.raises(BadRequest):
            manager.paths(bad)


def test_a_restarted_agent_adopts_running_haproxies(manager: HaproxyManager) -> None:
    lb = str(uuid.uuid4())
    manager.write_config(lb, haproxy_cfg(free_port()).encode())
    manager.start(lb)
    pid = manager.master_pid(lb)
    assert pid is not None
    again = HaproxyManager(manager.base_path, HAPROXY, reload_timeout=5)
    assert again.master_pid(lb) == pid
    again.reload(lb)                           # through the pid file, not a child handle
    assert again.master_pid(lb) == pid
    manager._children.clear()                  # the old agent is gone
    again.stop(lb)
    assert not again.running(lb)
    os.waitpid(pid, 0)                         # reap it: this test process is the parent


def test_a_stale_pid_file_does_not_count(manager: HaproxyManager) -> None:
    lb = str(uuid.uuid4())
    manager.write_config(lb, haproxy_cfg(free_port()).encode())
    (manager.base_path / lb / "haproxy.pid").write_text(f"{os.getpid()}\n")
    assert manager.master_pid(lb) is None      # alive, but not haproxy of this config


def test_a_config_that_cannot_bind_reports_haproxys_words(manager: HaproxyManager) -> None:
    lb = str(uuid.uuid4())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        manager.write_config(lb, haproxy_cfg(taken.getsockname()[1]).encode())
        with pytest.raises(AgentError, match="Error starting haproxy") as info:
            manager.start(lb)
    assert "bind" in info.value.details.lower()
    assert not manager.running(lb)


def test_stats_of_a_stopped_haproxy_is_404(manager: HaproxyManager) -> None:
    lb = str(uuid.uuid4())
    manager.write_config(lb, haproxy_cfg(free_port()).encode())
    with pytest.raises(NotFound):
        manager.stats(lb)


def test_a_crashed_master_is_seen_as_stopped(manager: HaproxyManager) -> None:
    lb = str(uuid.uuid4())
    manager.write_config(lb, haproxy_cfg(free_port()).encode())
    manager.start(lb)
    pid = manager.master_pid(lb)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    manager._children[lb].wait()
    assert not manager.running(lb)
    manager.reload(lb)                         # reload of a dead haproxy starts it
    assert manager.running(lb)
