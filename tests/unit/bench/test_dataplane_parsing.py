"""What the data-plane benchmarks count: wrk's figures, and the reload clients' failures
against a loopback server that misbehaves the way an old HAProxy worker can."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from bench.dataplane.load import parse_wrk
from bench.reload.clients import Client, ClosedEarly, read_response

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18765/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.33ms    9.49ms  62.98ms   88.60%
    Req/Sec   795.80    489.70     1.88k    70.00%
  Latency Distribution
     50%  812.00us
     75%    9.12ms
     90%   17.76ms
     99%    1.05s
  800 requests in 1.02s, 406.25KB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    787.72
Transfer/sec:    400.01KB
"""


def test_wrk_output_gives_rate_latency_and_errors() -> None:
    r = parse_wrk(WRK_OUTPUT)
    assert (r.requests, r.seconds, r.rps) == (800, 1.02, 787.72)
    assert r.p50_ms == pytest.approx(0.812) and r.p99_ms == pytest.approx(1050.0)
    assert r.errors == 2 + 1 + 3 + 7


def test_wrk_output_without_figures_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse_wrk("unable to connect to 10.0.0.1:80 Connection refused\n")


def test_read_response_keeps_pipelined_bytes_and_sees_connection_close() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 503 Service "
                  b"Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
        buffer = bytearray()
        assert read_response(a, buffer) == (200, True)
        assert read_response(a, buffer) == (503, False)
        assert buffer == b""
        b.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
        b.shutdown(socket.SHUT_WR)
        with pytest.raises(ClosedEarly) as closed:
            read_response(a, buffer)
        assert closed.value.got_bytes


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, int]]:
    """Loopback server: answers two requests per connection, then reads the third and
    closes without an answer (an idle keep-alive connection closed under the client);
    every fifth connection gets a 502."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        accepted = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted += 1
            with conn:
                conn.settimeout(2)
                status = b"502 Bad Gateway" if accepted % 5 == 0 else b"200 OK"
                for _ in range(2):
                    if not conn.recv(4096):
                        break
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
                else:
                    conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_keepalive_client_counts_a_connection_closed_before_the_answer(
        flaky_server: tuple[str, int]) -> None:
    host, port = flaky_server
    client = Client("keepalive", host, port, True, threading.Event(), max_requests=9)
    client.run()
    s = client.stats
    # Connections 1-3 serve 2 requests each and fail the third: 9 requests, 3 connections.
    assert (s.requests, s.connections, s.ok) == (9, 3, 6)
    assert s.failures == {"closed before any response byte on a reused connection": 3}


def test_new_connection_client_counts_5xx(flaky_server: tuple[str, int]) -> None:
    host, port = flaky_server
    client = Client("new-connection", host, port, False, threading.Event(), max_requests=10)
    client.run()
    s = client.stats
    assert (s.requests, s.connections) == (10, 10)
    assert s.failures == {"HTTP 502": 2} and s.ok == 8
