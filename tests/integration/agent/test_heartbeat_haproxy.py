"""The heartbeat sender against a real HAProxy: listener, pool and member status from its
``show stat``, traffic counters as deltas (also across a reload, whose new worker starts at
zero), sent over UDP and accepted by the health manager's decoder."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from statera.agent.haproxy import HaproxyManager
from statera.agent.heartbeat import start_heartbeat_sender
from statera.wire import heartbeat as wire
from tests.integration.agent.conftest import HAPROXY, free_port, need_root

MASTER = b"sender-test-master-key-0123456789"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"x" * 1000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Conf:
    amphora_id: str
    controller_ip_port_list: tuple[str, ...]
    heartbeat_interval: int
    heartbeat_key: str
    heartbeat_key_file: str
    heartbeat_mode: str


@pytest.fixture
def member() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def haproxy() -> Iterator[HaproxyManager]:
    need_root()
    base = Path(tempfile.mkdtemp(prefix="st-hb-"))  # short: socket paths are limited
    manager = HaproxyManager(base, HAPROXY)
    yield manager
    for lb_id in manager.lb_ids():
        manager.remove(lb_id)
    shutil.rmtree(base, ignore_errors=True)


def test_sender_reports_a_real_haproxy(haproxy: HaproxyManager, member: int,
                                       tmp_path: Path) -> None:
    amp, lb, li, pool = (str(uuid.uuid4()) for _ in range(4))
    up, down, drain = (str(uuid.uuid4()) for _ in range(3))
    front = free_port()
    cfg = f"""global
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend {li}
    bind 127.0.0.1:{front}
    default_backend {pool}:{li}
backend {pool}:{li}
    server {up} 127.0.0.1:{member} weight 1 check inter 200ms
    server {down} 127.0.0.1:{free_port()} weight 1 check inter 200ms fall 1
    server {drain} 127.0.0.1:{member} weight 0 check inter 200ms
"""
    haproxy.write_config(lb, cfg.encode())
    haproxy.start(lb)
    key_file = tmp_path / "heartbeat.key"
    key_file.write_text(wire.derive_amphora_key(MASTER, amp).hex())
    key_file.chmod(0o600)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    conf = Conf(amp, (f"127.0.0.1:{receiver.getsockname()[1]}",), 1, "", str(key_file),
                wire.PER_AMPHORA)
    decoder = wire.HeartbeatDecoder(wire.PER_AMPHORA, MASTER)
    # Sequence order is what matters here; a wide window, since on a loaded host the beats
    # can wait in the socket for seconds before this loop reads them.
    guard = wire.ReplayGuard(window=120)
    handle = start_heartbeat_sender(lambda: conf, haproxy, state_file=tmp_path / "state.json")
    try:
        time.sleep(1.0)  # health checks settle (fall 1, rise 2 at 200 ms)
        for _ in range(10):
            assert httpx.get(f"http://127.0.0.1:{front}/").status_code == 200
        beats = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            beat = decoder.decode(receiver.recv(70000))
            guard.accept(beat, time.time())
            beats.append(beat)
            if sum(b.listeners[li].total_connections for b in beats) >= 10 \
                    and beat.pools[f"{pool}:{li}"].members.get(down) == "DOWN":
                break
        last = beats[-1]
        assert last.amphora_id == amp
        assert last.listeners[li].status == "OPEN"
        assert last.pools[f"{pool}:{li}"].status == "UP"
        assert last.pools[f"{pool}:{li}"].members == {up: "UP", down: "DOWN", drain: "DRAIN"}
        assert sum(b.listeners[li].total_connections for b in beats) == 10
        sent_out = sum(b.listeners[li].bytes_out for b in beats)
        assert sent_out > 10 * 1000

        # A reload starts a worker whose counters are zero: deltas stay non-negative and
        # new traffic is counted once.
        haproxy.reload(lb)
        time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{front}/").status_code == 200
        later = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            beat = decoder.decode(receiver.recv(70000))
            guard.accept(beat, time.time())
            later.append(beat)
            if sum(b.listeners[li].total_connections for b in later) >= 1:
                break
        assert sum(b.listeners[li].total_connections for b in later) == 1
    finally:
        handle.stop()
        receiver.close()
    assert not handle.thread.is_alive()
