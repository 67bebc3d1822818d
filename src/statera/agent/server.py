"""A small HTTP/1.1 server over mutual TLS: the agent's transport, on the standard library.

Not ``http.server``: it parses headers with the ``email`` package and costs the agent a few
megabytes and tens of milliseconds of start for features the agent never uses. This one
speaks what a controller sends: HTTP/1.1 (and 1.0) requests with a Content-Length or chunked
body, keep-alive, ``Expect: 100-continue``. Anything else gets a clear 4xx/5xx and the
connection is closed. A request that smuggles both a length and a transfer coding, an
oversized line, too many headers or a body over the route's limit never reaches a route.

Each connection gets its own thread (at most ``max_connections`` at once), and the TLS
handshake runs there under a deadline, so a slow or hostile client never holds up accept().
The TLS context is read at each accept: ``reload_context`` swaps in a new one (a rotated
server certificate) without touching connections already open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

LOG = logging.getLogger("statera.agent.http")

MAX_LINE = 8192
MAX_HEADERS = 64
# Only the management network reaches the agent, but a peer there without a certificate
# must not hold connection slots for long: it gets this long to finish its handshake.
HANDSHAKE_TIMEOUT = 5.0
# Longer than any client's keep-alive expiry (httpx: 5 s), so the client closes an idle
# connection first and never sends a request into one the server is closing.
IDLE_TIMEOUT = 30.0
REQUEST_TIMEOUT = 60.0
# A body nobody read (a route without one) is read and dropped to keep the connection, up
# to this size; past it the connection closes instead.
DRAIN_LIMIT = 64 * 1024
# How long, and how much, a refused body is still read so the client gets the answer.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024 * 1024
# IP_FREEBIND (linux/in.h): bind the management address before the interface holds it, so
# the agent can start while its namespace is still being plumbed.
IP_FREEBIND = 15

REASONS = {100: "Continue", 200: "OK", 202: "Accepted", 204: "No Content",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
           417: "Expectation Failed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable",
           505: "HTTP Version Not Supported"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


class HttpError(Exception):
    """A request the server refuses before (or instead of) any route; the connection
    closes after the answer."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


class BodyTooLarge(Exception):
    pass


def unquote(segment: str) -> str:
    """Percent-decoding of one path segment (after the split, so ``%2F`` stays inside it)."""
    if "%" not in segment:
        return segment
    raw = _PCT.sub(lambda m: bytes.fromhex(m[1].decode()), segment.encode())
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "the path is not valid UTF-8") from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Request:
    """One request: its line, its headers (names lower-cased) and a body read on demand."""

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 rfile: BinaryIO, send_continue: Callable[[], None]) -> None:
        self.method = method
        self.path = target.split("?", 1)[0]
        self.version = version
        self.headers = headers
        self._rfile = rfile
        self._send_continue = send_continue
        self._consumed = False
        self._broken = False
        self._length: int | None = None
        self.chunked = False
        te = headers.get("transfer-encoding")
        if te is not None:
            if "content-length" in headers:
                raise HttpError(400, "both Content-Length and Transfer-Encoding")
            if te.strip().lower() != "chunked":
                raise HttpError(501, "only the chunked transfer coding is supported")
            self.chunked = True
        elif "content-length" in headers:
            value = headers["content-length"].strip()
            if not value.isdigit() or len(value) > 12:
                raise HttpError(400, "bad Content-Length")
            self._length = int(value)
        if headers.get("expect", "").lower() not in ("", "100-continue"):
            raise HttpError(417, "only 'Expect: 100-continue' is understood")

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self._length)

    def body(self, limit: int) -> bytes:
        """The whole body; BodyTooLarge past `limit` bytes (the connection then closes)."""
        if self._consumed or self._broken:
            raise RuntimeError("the body was read already")
        if not self.has_body:
            self._consumed = True
            return b""
        # Whatever happens below, only a complete read leaves the connection usable.
        self._broken = True
        if self._length is not None and self._length > limit:
            raise BodyTooLarge
        if self.headers.get("expect", "").lower() == "100-continue":
            self._send_continue()
        if self.chunked:
            data = self._chunked(limit)
        else:
            assert self._length is not None
            data = self._rfile.read(self._length)
            if len(data) != self._length:
                raise HttpError(400, "the body ended early")
        self._broken, self._consumed = False, True
        return data

    def _chunked(self, limit: int) -> bytes:
        out = bytearray()
        while True:
            line = _readline(self._rfile)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "bad chunk size") from None
            if size == 0:
                break
            if len(out) + size > limit:
                raise BodyTooLarge
            chunk = self._rfile.read(size)
            if len(chunk) != size or _readline(self._rfile) != b"":
                raise HttpError(400, "a chunk ended early")
            out += chunk
        for _ in range(MAX_HEADERS):  # trailers, ignored
            if _readline(self._rfile) == b"":
                return bytes(out)
        raise HttpError(431, "too many trailer fields")

    def finish(self) -> bool:
        """Drop a body no route read, so the next request starts where it should. False when
        the connection cannot be kept (a body too large to drop)."""
        if self._broken:
            return False
        if self._consumed or not self.has_body:
            return True
        try:
            self.body(DRAIN_LIMIT)
        except BodyTooLarge:
            return False
        return True


def _readline(rfile: BinaryIO) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise HttpError(431, "a line is too long")
    if not line.endswith(b"\n"):
        raise ConnectionError("the connection closed mid-request")
    return line.rstrip(b"\r\n")


def read_request(rfile: BinaryIO, send_continue: Callable[[], None]) -> Request | None:
    """The next request on a connection, or None when the client closed it."""
    line = rfile.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # tolerated between requests (RFC 9112 2.2)
        line = rfile.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE:
        raise HttpError(431, "the request line is too long")
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1].startswith(b"/"):
        raise HttpError(400, "bad request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "HTTP/1.1 only")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = _readline(rfile)
        if raw == b"":
            return Request(method, target, version, headers, rfile, send_continue)
        name, sep, value = raw.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise HttpError(400, "bad header line")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        if key in headers:
            if key in ("content-length", "transfer-encoding", "host"):
                raise HttpError(400, f"{key} given twice")
            headers[key] += ", " + text
        else:
            headers[key] = text
    raise HttpError(431, "too many header fields")


def http_date(now: float | None = None) -> str:
    t = time.gmtime(now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def encode_response(response: Response, close: bool, head_only: bool = False,
                    keep_alive_header: bool = False) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {http_date()}",
             f"Content-Length: {len(response.body)}"]
    if response.body or response.content_type != "application/json":
        lines.append(f"Content-Type: {response.content_type}")
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    if close:
        lines.append("Connection: close")
    elif keep_alive_header:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class _Connection:
    __slots__ = ("busy", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.busy = False


class TlsHttpServer:
    """``serve_forever()`` until ``stop()`` (from a signal handler or another thread)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext,
                 handler: Callable[[Request], Response], *, max_connections: int = 128,
                 error_body: Callable[[int, str], bytes] | None = None) -> None:
        self.socket = sock
        self.context = context
        self.handler = handler
        self.max_connections = max_connections
        self.error_body = error_body or _default_error_body
        self._stopping = False
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def reload_context(self, context: ssl.SSLContext) -> None:
        """New handshakes use `context`; open connections keep theirs."""
        self.context = context

    # ---- accept loop ----------------------------------------------------------------------

    def serve_forever(self, grace: float = 5.0) -> None:
        try:
            while not self._stopping:
                try:
                    raw, peer = self.socket.accept()
                except OSError as exc:
                    if self._stopping:
                        break
                    LOG.warning("accept failed: %s", exc)  # EMFILE and the like
                    time.sleep(0.05)
                    continue
                self._start_connection(raw, peer)
        finally:
            with contextlib.suppress(OSError):
                self.socket.close()
            self._drain(grace)

    def stop(self) -> None:
        """Stop accepting; serve_forever() returns once requests in progress are answered
        (at most `grace` seconds). Safe to call from a signal handler."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes accept() with EINVAL

    def _start_connection(self, raw: socket.socket, peer: tuple[str, int]) -> None:
        conn = _Connection(raw)
        with self._lock:
            if len(self._connections) >= self.max_connections:
                LOG.warning("refusing a connection from %s: %d connections open", peer[0],
                            len(self._connections))
                raw.close()
                return
            self._connections.add(conn)
        thread = threading.Thread(target=self._serve_connection, args=(conn, peer),
                                  name=f"conn-{peer[0]}:{peer[1]}", daemon=True)
        thread.start()

    def _drain(self, grace: float) -> None:
        deadline = time.monotonic() + grace
        while True:
            with self._lock:
                for conn in self._connections:
                    if not conn.busy:
                        # The plain socket's shutdown, even on a TLS one: it only wakes the
                        # connection's thread, which then closes the connection itself.
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
                if not self._connections or time.monotonic() > deadline:
                    return
            time.sleep(0.02)

    # ---- one connection -------------------------------------------------------------------

    def _serve_connection(self, conn: _Connection, peer: tuple[str, int]) -> None:
        raw = conn.sock
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT)
            try:
                tls = self.context.wrap_socket(raw, server_side=True)
            except (OSError, ValueError) as exc:
                LOG.info("refused a TLS connection from %s: %s", peer[0],
                         getattr(exc, "reason", None) or exc)
                return
            conn.sock = tls
            with tls, tls.makefile("rb") as rfile:
                self._requests(conn, tls, rfile, peer)
        except Exception:  # a thread must not die with a bare traceback on stderr
            LOG.exception("connection from %s failed", peer[0])
        finally:
            with contextlib.suppress(OSError):
                raw.close()
            with self._lock:
                self._connections.discard(conn)

    def _requests(self, conn: _Connection, tls: ssl.SSLSocket, rfile: BinaryIO,
                  peer: tuple[str, int]) -> None:
        def send_continue() -> None:
            tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        while not self._stopping:
            tls.settimeout(IDLE_TIMEOUT)
            try:
                request = read_request(rfile, send_continue)
            except HttpError as exc:
                self._send_error(tls, exc)
                return
            except (OSError, ValueError):
                return  # idle timeout, reset, or closed while the client sent a request
            if request is None:
                return
            conn.busy = True
            tls.settimeout(REQUEST_TIMEOUT)
            started = time.monotonic()
            try:
                response = self.handler(request)
                keep = request.finish()
            except HttpError as exc:
                self._send_error(tls, exc)
                _linger(tls)
                return
            except OSError:
                return
            wants = request.headers.get("connection", "").lower()
            http10 = request.version == "HTTP/1.0"
            close = (not keep or self._stopping or wants == "close"
                     or (http10 and wants != "keep-alive"))
            try:
                tls.sendall(encode_response(response, close, request.method == "HEAD",
                                            keep_alive_header=http10))
            except OSError:
                return
            finally:
                conn.busy = False
            LOG.info('%s "%s %s" %d %.1f ms', peer[0], request.method, request.path,
                     response.status, (time.monotonic() - started) * 1000)
            if not keep:
                _linger(tls)
            if close:
                return

    def _send_error(self, tls: ssl.SSLSocket, exc: HttpError) -> None:
        response = Response(exc.status, self.error_body(exc.status, exc.details))
        with contextlib.suppress(OSError):
            tls.sendall(encode_response(response, close=True))


def _linger(tls: ssl.SSLSocket) -> None:
    """Read and drop what a client still sends (the rest of a body the answer refused) for a
    short while before closing: closing with unread data resets the connection, and the
    client would lose the answer it has not read yet."""
    deadline = time.monotonic() + LINGER_SECONDS
    dropped = 0
    with contextlib.suppress(OSError, ValueError):
        while dropped < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            tls.settimeout(left)
            data = tls.recv(65536)
            if not data:
                return
            dropped += len(data)


def _default_error_body(status: int, details: str) -> bytes:
    return json.dumps({"message": REASONS.get(status, "Error"), "details": details}).encode()


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on a numeric address; "::" also takes IPv4."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST)
    except socket.gaierror:
        raise ValueError(f"[haproxy_amphora] bind_host {host!r} is not an IP address") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
