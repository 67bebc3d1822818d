"""The agent's HTTP/1.1 server: parsing written down as bytes (no socket), then the behaviour
only a connection shows (keep-alive, 100-continue, limits, refusals, a graceful stop) against
the real server over mutual TLS on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from statera.agent.main import tls_context
from statera.agent.server import (
    BodyTooLarge,
    HttpError,
    Request,
    Response,
    TlsHttpServer,
    encode_response,
    http_date,
    listen,
    read_request,
    unquote,
)
from statera.drivers.certs.local_ca import Pki, init_pki
from tests.unit.agent.conftest import controller_context


def parse(raw: bytes) -> Request | None:
    return read_request(io.BytesIO(raw), lambda: None)


# ---- parsing, no socket --------------------------------------------------------------------

def test_a_request_line_and_its_headers() -> None:
    r = parse(b"GET /1.0/info?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v \r\n\r\n")
    assert r is not None
    assert (r.method, r.path, r.version) == ("GET", "/1.0/info", "HTTP/1.1")
    assert r.headers == {"host": "a", "x-thing": "v"}
    assert not r.has_body and r.body(10) == b""


def test_end_of_stream_is_no_request_and_blank_lines_between_requests_are_skipped() -> None:
    assert parse(b"") is None
    r = parse(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert r is not None and r.path == "/"


def test_bodies_by_length_and_by_chunks() -> None:
    r = parse(b"PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloNEXT")
    assert r is not None and r.body(5) == b"hello"
    r = parse(b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    assert r is not None and r.body(100) == b"hello world"


def test_bodies_over_the_limit_are_refused_before_they_are_read() -> None:
    r = parse(b"PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
    assert r is not None
    with pytest.raises(BodyTooLarge):
        r.body(99)
    assert r.finish() is False            # the connection cannot be reused
    r = parse(b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n")
    assert r is not None
    with pytest.raises(BodyTooLarge):
        r.body(63)


def test_an_unread_body_is_dropped_so_the_next_request_parses() -> None:
    stream = io.BytesIO(b"PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n")
    first = read_request(stream, lambda: None)
    assert first is not None and first.finish() is True
    second = read_request(stream, lambda: None)
    assert second is not None and second.path == "/b"


@pytest.mark.parametrize("raw, status", [
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nExpect: magic\r\n\r\n", 417),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /\r\n\r\n", 400),
    (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 65 + b"\r\n", 431),
])
def test_malformed_requests_are_refused(raw: bytes, status: int) -> None:
    with pytest.raises(HttpError) as info:
        parse(raw)
    assert info.value.status == status


def test_a_request_cut_short_is_a_closed_connection() -> None:
    with pytest.raises(ConnectionError):
        parse(b"GET / HTTP/1.1\r\nHost: a")
    r = parse(b"PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert r is not None
    with pytest.raises(HttpError, match="ended early"):
        r.body(100)


def test_path_segments_are_percent_decoded_one_by_one() -> None:
    assert unquote("a%2Fb%41") == "a/bA"
    assert unquote("plain") == "plain"
    with pytest.raises(HttpError):
        unquote("%ff%fe")


def test_responses_carry_length_date_and_close() -> None:
    out = encode_response(Response(202, b'{"a": 1}', headers={"ETag": "x"}), close=True)
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 202 Accepted"
    assert "Content-Length: 8" in lines and "ETag: x" in lines
    assert "Connection: close" in lines and "Content-Type: application/json" in lines
    assert body == b'{"a": 1}'
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert encode_response(Response(200, b"abc"), close=False, head_only=True).endswith(
        b"\r\n\r\n")


# ---- over a connection ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return init_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server_pem(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("server")
    (d / "server.pem").write_bytes(pki.issue_server_cert("agent")[0])
    (d / "ca.pem").write_bytes(pki.client_ca_pem())
    return d / "server.pem", d / "ca.pem"


Handler = Callable[[Request], Response]


@pytest.fixture
def serve(server_pem: tuple[Path, Path]) -> Iterator[Callable[..., TlsHttpServer]]:
    started: list[tuple[TlsHttpServer, threading.Thread]] = []

    def start(handler: Handler, max_connections: int = 64) -> TlsHttpServer:
        server = TlsHttpServer(listen("127.0.0.1", 0), tls_context(*server_pem), handler,
                               max_connections=max_connections)
        thread = threading.Thread(target=server.serve_forever, kwargs={"grace": 2.0},
                                  daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    try:
        yield start
    finally:
        for server, thread in started:
            server.stop()
            thread.join(10)


def echo(request: Request) -> Response:
    body = request.body(1024)
    return Response(200, json.dumps({"method": request.method, "path": request.path,
                                     "body": body.decode()}).encode())


def connect(server: TlsHttpServer, pki: Pki) -> ssl.SSLSocket:
    raw = socket.create_connection(server.address, timeout=5)
    return controller_context(pki).wrap_socket(raw)


def read_response(tls: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    f = tls.makefile("rb")
    status = int(f.readline().split()[1])
    headers = {}
    while (line := f.readline().rstrip(b"\r\n")):
        k, _, v = line.decode().partition(":")
        headers[k.lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    f.close()
    return status, headers, body


def test_keep_alive_serves_several_requests_on_one_connection(
        serve: Callable[..., TlsHttpServer], pki: Pki) -> None:
    server = serve(echo)
    with connect(server, pki) as tls:
        for i in range(3):
            tls.sendall(f"PUT /n/{i} HTTP/1.1\r\nContent-Length: 2\r\n\r\nab".encode())
            status, headers, body = read_response(tls)
            assert status == 200 and "connection" not in headers
            assert json.loads(body) == {"method": "PUT", "path": f"/n/{i}", "body": "ab"}
        tls.sendall(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert read_response(tls)[1]["connection"] == "close"
        assert tls.recv(10) == b""


def test_expect_100_continue_and_http_1_0(serve: Callable[..., TlsHttpServer],
                                          pki: Pki) -> None:
    server = serve(echo)
    with connect(server, pki) as tls:
        tls.sendall(b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        tls.sendall(b"abc")
        assert json.loads(read_response(tls)[2])["body"] == "abc"
    with connect(server, pki) as tls:
        tls.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        assert read_response(tls)[1]["connection"] == "close"


def test_a_malformed_request_gets_a_json_error_and_the_connection_closes(
        serve: Callable[..., TlsHttpServer], pki: Pki) -> None:
    server = serve(echo)
    with connect(server, pki) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        status, headers, body = read_response(tls)
        assert status == 400 and headers["connection"] == "close"
        assert json.loads(body) == {"message": "Bad Request",
                                    "details": "both Content-Length and Transfer-Encoding"}
        assert tls.recv(10) == b""


def test_a_client_without_certificate_never_reaches_the_handler(
        serve: Callable[..., TlsHttpServer], pki: Pki) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    server = serve(handler)
    ctx = ssl.create_default_context(cafile=str(pki.paths.server_ca_cert))
    ctx.check_hostname = False
    # Under TLS 1.3 the client learns of the refusal at its first read, not at the handshake.
    with (pytest.raises((ssl.SSLError, ConnectionError)),
          ctx.wrap_socket(socket.create_connection(server.address, timeout=5)) as tls):
        tls.sendall(b"GET / HTTP/1.1\r\n\r\n")
        if tls.recv(100) == b"":
            raise ConnectionError("closed")
    assert seen == []


def test_connections_over_the_limit_are_closed_at_once(serve: Callable[..., TlsHttpServer],
                                                      pki: Pki) -> None:
    server = serve(echo, max_connections=1)
    with connect(server, pki) as first:
        first.sendall(b"GET /a HTTP/1.1\r\n\r\n")
        assert read_response(first)[0] == 200
        raw = socket.create_connection(server.address, timeout=5)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            controller_context(pki).wrap_socket(raw)
        raw.close()
    deadline = time.monotonic() + 5            # the first one gone, a new one is served
    while True:
        try:
            with connect(server, pki) as again:
                again.sendall(b"GET /b HTTP/1.1\r\n\r\n")
                assert read_response(again)[0] == 200
                break
        except (ssl.SSLError, ConnectionError):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_stop_answers_the_request_in_progress_and_closes_idle_connections(
        serve: Callable[..., TlsHttpServer], pki: Pki) -> None:
    entered = threading.Event()

    def slow(request: Request) -> Response:
        entered.set()
        time.sleep(0.5)
        return Response(200, b'"done"')

    server = serve(slow)
    idle = connect(server, pki)
    busy = connect(server, pki)
    busy.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
    assert entered.wait(5)
    stopped = threading.Thread(target=server.stop)
    stopped.start()
    status, headers, body = read_response(busy)
    assert (status, body) == (200, b'"done"')
    assert headers["connection"] == "close"       # no more requests on a stopping server
    assert idle.recv(10) == b""                   # the idle one was closed
    stopped.join(5)
    idle.close()
    busy.close()
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=1).close()
