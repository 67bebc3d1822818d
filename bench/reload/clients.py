"""Two bounded HTTP/1.1 clients on raw sockets that count every failed request.

* ``keepalive``: one connection reused for request after request; a fresh one only when the
  server said ``Connection: close`` (HAProxy's old workers say so while they soft-stop) or
  when the connection failed.
* ``new-connection``: a new TCP connection for every request (``Connection: close``).

A request fails when the connection cannot be made, is reset, closes before a whole response
arrived, times out, or the status is not 2xx. Failures on a reused keep-alive connection that
closed before the first byte of the response are counted apart too: RFC 9112 §9.3.1 lets a
client retry those, but they still count as failures here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

TIMEOUT = 5.0


class ClosedEarly(Exception):
    """The connection ended before a whole response; ``got_bytes`` says if any came."""

    def __init__(self, got_bytes: bool) -> None:
        super().__init__("connection closed before a whole response")
        self.got_bytes = got_bytes


@dataclass
class ClientStats:
    name: str
    requests: int = 0
    ok: int = 0
    connections: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    failed_at: list[float] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, bool]:
    """Read one response (Content-Length bodies) from ``sock``; returns (status, whether the
    server keeps the connection open). Leftover bytes stay in ``buffer``."""
    got_any = bool(buffer)
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ClosedEarly(got_any)
        got_any = True
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip().lower()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    total = len(head) + 4 + length
    while len(buffer) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ClosedEarly(True)
        buffer += chunk
    del buffer[:total]
    return status, headers.get("connection") != "close"


class Client(threading.Thread):
    """Sends GET / to ``host:port`` until ``stop`` is set or ``max_requests`` are made."""

    def __init__(self, name: str, host: str, port: int, keepalive: bool,
                 stop: threading.Event, max_requests: int) -> None:
        super().__init__(name=f"client-{name}", daemon=True)
        self.address = (host, port)
        self.keepalive = keepalive
        self.stop = stop
        self.max_requests = max_requests
        self.stats = ClientStats(name)
        connection = "keep-alive" if keepalive else "close"
        self.request = (f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n"
                        "User-Agent: statera-bench-reload\r\n\r\n").encode()

    def run(self) -> None:
        sock: socket.socket | None = None
        reused = False
        buffer = bytearray()
        stats = self.stats
        while not self.stop.is_set() and stats.requests < self.max_requests:
            stats.requests += 1
            try:
                if sock is None:
                    sock = socket.create_connection(self.address, timeout=TIMEOUT)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    stats.connections += 1
                    reused = False
                    buffer.clear()
                sock.sendall(self.request)
                status, keep = read_response(sock, buffer)
            except ClosedEarly as exc:
                kind = ("closed before any response byte on a reused connection"
                        if reused and not exc.got_bytes else "closed mid-response"
                        if exc.got_bytes else "closed before any response byte")
                self._fail(kind)
                sock = self._close(sock)
                continue
            except ConnectionRefusedError:
                self._fail("connection refused")
                sock = self._close(sock)
                continue
            except ConnectionResetError:
                self._fail("reset" + (" on a reused connection" if reused else ""))
                sock = self._close(sock)
                continue
            except TimeoutError:
                self._fail("timeout")
                sock = self._close(sock)
                continue
            except OSError as exc:
                self._fail(f"socket error: {exc.strerror or exc}")
                sock = self._close(sock)
                continue
            if 200 <= status < 300:
                stats.ok += 1
            else:
                self._fail(f"HTTP {status}")
            if self.keepalive and keep:
                reused = True
            else:
                sock = self._close(sock)
        self._close(sock)

    def _fail(self, kind: str) -> None:
        self.stats.failures[kind] += 1
        self.stats.failed_at.append(time.monotonic())

    @staticmethod
    def _close(sock: socket.socket | None) -> None:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        return None
