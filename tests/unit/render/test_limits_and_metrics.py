"""Two things only a running HAProxy shows: the global maxconn must fit in the file descriptors
HAProxy may open (or it refuses to start and to reload), and a PROMETHEUS listener serves
HAProxy's exporter under Octavia's names through the metrics proxy that HAProxy's master
runs as a ``program`` (statera.agent.prometheus)."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from statera.agent.prometheus import rename, serve, usage_lines
from statera.domain.model import Listener, LoadBalancer, Vip
from statera.render.escape import RenderError
from statera.render.haproxy import fd_bound, render_haproxy_config
from tests.unit.render.conftest import HAPROXY, Haproxy, simple_lb, uid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def global_maxconn(config: str) -> int:
    found = re.search(r"^global\n(?:    .*\n)*?    maxconn (\d+)$", config, re.M)
    assert found, config
    return int(found.group(1))


def loopback_lb(listeners: int, protocol: str = "HTTP") -> LoadBalancer:
    """A load balancer HAProxy can really bind: its VIP is 127.0.0.1, on free ports."""
    lb = simple_lb()
    lb.vip = Vip(ip_address="127.0.0.1", subnet_id=None, network_id=None, port_id=None)
    lb.listeners = [
        Listener(id=uid(400 + i), protocol=protocol, protocol_port=free_port(),
                 default_pool_id=lb.pools[0].id)
        for i in range(listeners)
    ]
    return lb


@contextlib.contextmanager
def running(config: str, workdir: Path, fd_limit: int | None = None
            ) -> Iterator[subprocess.Popen[str]]:
    """``haproxy -Ws`` on ``config`` (with at most ``fd_limit`` descriptors); stopped by PID."""
    path = workdir / f"haproxy-{time.monotonic_ns()}.cfg"
    path.write_text(config)

    def limit() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen([HAPROXY, "-Ws", "-f", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=limit,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        path.unlink()


def wait_listening(port: int, proc: subprocess.Popen[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.05)


def wait_answering(url: str, proc: subprocess.Popen[str], timeout: float = 10) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    url, timeout=2) as r:
                body: bytes = r.read()
                return body
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.05)


# ---- file descriptors -------------------------------------------------------------------------


def test_maxconn_fits_the_descriptor_limit(haproxy: Haproxy) -> None:
    lb = loopback_lb(6)  # 6 x 50,000 wanted
    config = haproxy.valid(lb, haproxy.options(fd_limit=4096))  # and no warning about it
    assert global_maxconn(config) == fd_bound(4096, 6 + 6) < 1600
    # Without the bound, the same load balancer cannot start under that limit.
    unbounded = render_haproxy_config(lb, haproxy.options(global_maxconn_cap=(4096 - 200) // 2))
    with running(unbounded, haproxy.root, fd_limit=4096) as proc:
        output = proc.communicate(timeout=10)[0]
    assert "Cannot raise FD limit" in output
    with running(config, haproxy.root, fd_limit=4096) as proc:
        for listener in lb.listeners:  # started: every listener accepts connections
            wait_listening(listener.protocol_port, proc)


def test_fd_bound_counts_two_and_a_half_per_connection() -> None:
    assert fd_bound(20_000, 0) == (20_000 - 200) * 2 // 5
    assert fd_bound(20_000, 100) < fd_bound(20_000, 0)
    assert fd_bound(100, 50) == 1  # never below one


def test_smaller_limits_are_left_alone(haproxy: Haproxy) -> None:
    lb = simple_lb(Listener(id=uid(101), protocol="HTTP", protocol_port=80,
                            connection_limit=1000))
    config = render_haproxy_config(lb, haproxy.options(fd_limit=1 << 20))
    assert global_maxconn(config) == 1000


# ---- PROMETHEUS -------------------------------------------------------------------------------


def prometheus_lb(port: int = 9100) -> LoadBalancer:
    lb = simple_lb()
    lb.listeners.append(Listener(id=uid(150), protocol="PROMETHEUS", protocol_port=port,
                                 allowed_cidrs=["10.0.0.0/8", "127.0.0.0/8"]))
    return lb


def test_prometheus_listener_forwards_to_the_metrics_proxy(haproxy: Haproxy) -> None:
    opts = haproxy.options(prometheus_proxy_command=("/usr/bin/python3", "-m",
                                                     "statera.agent.prometheus"))
    config = haproxy.valid(prometheus_lb(), opts)
    lines = [line.strip() for line in config.splitlines()]
    assert lines[lines.index("global") + 1] == "master-worker"
    program = lines[lines.index("program statera-prometheus-proxy") + 1]
    assert program == ("command /usr/bin/python3 -m statera.agent.prometheus "
                       "--listen 127.0.0.1:9102 --exporter 127.0.0.1:9101")
    assert "server metrics-proxy 127.0.0.1:9102" in lines
    listener = config.split(f"frontend {uid(150)}\n")[1].split("\n\n")[0]
    assert "http-request return status 404 unless { path /metrics }" in listener
    assert "use_backend statera-prometheus-proxy" in listener
    assert "tcp-request connection reject unless statera-allowed-source" in listener
    assert "use-service" not in listener


def test_without_the_proxy_the_listener_serves_haproxy_names(haproxy: Haproxy) -> None:
    config = haproxy.valid(prometheus_lb(), haproxy.options(prometheus_proxy_port=0))
    assert "program" not in config and "master-worker" not in config
    assert "http-request use-service prometheus-exporter if { path /metrics }" in config


def test_no_prometheus_listener_no_program(haproxy: Haproxy) -> None:
    config = haproxy.valid(simple_lb())
    assert "program" not in config and "master-worker" not in config
    assert "prometheus" not in config


@pytest.mark.parametrize("command", [
    ("python3", "-m", "x"),                       # not an absolute path
    ("/usr/bin/python3", "-m x"),                 # a blank would split the word
    ("/usr/bin/python3", "x\n    bind :1"),       # a new line
    ("/usr/bin/python3", "#"),
    (),
])
def test_a_bad_proxy_command_is_refused(haproxy: Haproxy, command: tuple[str, ...]) -> None:
    with pytest.raises(RenderError):
        render_haproxy_config(prometheus_lb(), haproxy.options(prometheus_proxy_command=command))


def test_metrics_proxy_runs_under_haproxy_and_survives_reloads(haproxy: Haproxy) -> None:
    """The rendered config, run by a real master-worker HAProxy: the PROMETHEUS listener
    answers with Octavia's names, a reload replaces the proxy, and stopping HAProxy stops
    it."""
    lb = prometheus_lb(port=free_port())
    lb.vip = Vip(ip_address="127.0.0.1", subnet_id=None, network_id=None, port_id=None)
    lb.listeners[0].protocol_port = free_port()
    opts = haproxy.options(prometheus_port=free_port(), prometheus_proxy_port=free_port(),
                           log_target=None, fd_limit=4096)
    config = render_haproxy_config(lb, opts)
    url = f"http://127.0.0.1:{lb.listeners[1].protocol_port}/metrics"
    with running(config, haproxy.root) as proc:
        first = wait_answering(url, proc).decode()
        names = {line.split("{")[0].split(" ")[0] for line in first.splitlines()
                 if line and not line.startswith("#")}
        assert names and all(n.startswith("octavia_") for n in names), names
        assert {"octavia_loadbalancer_cpu", "octavia_loadbalancer_memory",
                "octavia_listener_status", "octavia_pool_status", "octavia_member_weight",
                "octavia_memory_pool_used_bytes"} <= names
        memory = re.search(r"^octavia_loadbalancer_memory (\S+)$", first, re.M)
        assert memory and float(memory.group(1)) > 0  # the parent is HAProxy: measured
        assert f'listener="{uid(150)}"' in first
        assert "statera-prometheus" not in first
        proxies = _children(proc.pid, "statera.agent.prometheus")
        assert len(proxies) == 1
        os.kill(proc.pid, signal.SIGUSR2)  # a reload: a new proxy replaces the old one
        deadline = time.monotonic() + 10
        while _children(proc.pid, "statera.agent.prometheus") in ([], proxies):
            assert time.monotonic() < deadline, "the proxy was not replaced"
            time.sleep(0.05)
        assert "octavia_listener_status" in wait_answering(url, proc).decode()
        after = _children(proc.pid, "statera.agent.prometheus")
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in after):
        assert time.monotonic() < deadline, "the proxy outlived HAProxy"
        time.sleep(0.05)


def _children(pid: int, marker: str) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for child in children:
        with contextlib.suppress(OSError):
            if marker.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(int(child))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# ---- the renaming itself (statera.agent.prometheus) -------------------------------------------

EXPOSITION = """\
# HELP haproxy_process_current_connections Number of active sessions
# TYPE haproxy_process_current_connections gauge
haproxy_process_current_connections 3
# HELP haproxy_process_build_info Build info
# TYPE haproxy_process_build_info gauge
haproxy_process_build_info{version="2.6.12"} 1
haproxy_process_pool_used_bytes 72680
haproxy_frontend_status{proxy="statera-prometheus-internal",state="UP"} 1
haproxy_frontend_status{proxy="L1",state="UP"} 1
haproxy_frontend_http_responses_total{proxy="L1",code="5xx"} 7
haproxy_backend_status{proxy="statera-prometheus-proxy",state="UP"} 1
haproxy_backend_weight{proxy="P1:L1"} 2
haproxy_server_weight{proxy="P1:L1",server="M1"} 2
haproxy_server_check_status{proxy="P1:L1",server="M\\"odd",state="L4OK"} 1
haproxy_sticktable_size{name="x"} 10
"""


def test_names_and_labels_become_octavia_ones() -> None:
    assert rename(EXPOSITION.splitlines(keepends=True)) == [
        "# HELP octavia_loadbalancer_current_connections Number of active sessions",
        "# TYPE octavia_loadbalancer_current_connections gauge",
        "octavia_loadbalancer_current_connections 3",
        "octavia_memory_pool_used_bytes 72680",
        'octavia_listener_status{listener="L1",state="UP"} 1',
        'octavia_listener_http_responses_total{listener="L1",code="5xx"} 7',
        'octavia_pool_weight{pool="P1:L1"} 2',
        'octavia_member_weight{pool="P1:L1",member="M1"} 2',
        'octavia_member_check_status{pool="P1:L1",member="M\\"odd",state="L4OK"} 1',
    ]


def test_cpu_and_memory_lines() -> None:
    lines = usage_lines(12.345, 0.5)
    assert "octavia_loadbalancer_cpu 12.3" in lines
    assert "octavia_loadbalancer_memory 0.5" in lines
    assert "# TYPE octavia_loadbalancer_cpu gauge" in lines


def test_the_proxy_answers_503_when_haproxy_is_not_there() -> None:
    server = serve(("127.0.0.1", 0), ("127.0.0.1", free_port()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert caught.value.code == 503
    finally:
        server.shutdown()
        server.server_close()
