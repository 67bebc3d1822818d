"""The metrics of a PROMETHEUS listener: HAProxy's exporter under Octavia's metric names.

HAProxy's master runs this as a ``program`` of the load balancer's haproxy.cfg (see
render/haproxy.py), inside the amphora's tenant namespace, and starts a fresh one on every
reload (the old one gets SIGUSR1 and leaves):

    python -m statera.agent.prometheus --listen 127.0.0.1:9102 --exporter 127.0.0.1:9101

Each scrape fetches HAProxy's own exporter (the internal ``prometheus-exporter`` frontend)
and rewrites it the way upstream's amphora does, so that dashboards and alerts written for
Octavia work unchanged:

* ``haproxy_frontend_*`` → ``octavia_listener_*`` with the label ``proxy=`` → ``listener=``;
* ``haproxy_backend_*`` → ``octavia_pool_*`` (``proxy=`` → ``pool=``, which reads
  ``<pool_id>:<listener_id>``);
* ``haproxy_server_*`` → ``octavia_member_*`` (``proxy=`` → ``pool=``, ``server=`` →
  ``member=``);
* the process-wide ``haproxy_process_*`` that upstream publishes → ``octavia_loadbalancer_*``,
  and its memory-pool counters → ``octavia_memory_pool_*``; the others are left out;
* samples of Statera's own plumbing (proxies named ``statera-*``) are left out;
* ``octavia_loadbalancer_cpu`` and ``octavia_loadbalancer_memory`` are added: the CPU
  (percent of one CPU, since the previous scrape) and memory (percent of the host's) used by
  this load balancer's HAProxy processes, which are this program's parent and siblings.
  Upstream reports its whole VM; a namespace amphora's nearest equivalent is its HAProxy.

Standard library only, and nothing else of Statera is imported: one runs per load balancer
with a PROMETHEUS listener, so it must stay small.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable

# The process-wide gauges and counters upstream publishes as octavia_loadbalancer_*.
LOADBALANCER_METRICS = frozenset({
    "current_connections", "max_connections", "connections_total", "requests_total",
    "current_ssl_connections", "max_ssl_connections", "ssl_connections_total",
    "current_connection_rate", "limit_connection_rate", "max_connection_rate",
    "current_session_rate", "limit_session_rate", "max_session_rate",
    "current_ssl_rate", "limit_ssl_rate", "max_ssl_rate",
    "current_frontend_ssl_key_rate", "max_frontend_ssl_key_rate", "frontend_ssl_reuse",
    "current_backend_ssl_key_rate", "max_backend_ssl_key_rate",
    "ssl_cache_lookups_total", "ssl_cache_misses_total",
    "http_comp_bytes_in_total", "http_comp_bytes_out_total", "limit_http_comp",
    "listeners", "dropped_logs_total",
})
MEMORY_POOL_METRICS = frozenset({"pool_allocated_bytes", "pool_used_bytes",
                                 "pool_failures_total"})
# haproxy_<kind>_<rest>: the Octavia object and how its labels are renamed.
OBJECTS = {
    "frontend": ("listener", {"proxy": "listener"}),
    "backend": ("pool", {"proxy": "pool"}),
    "server": ("member", {"proxy": "pool", "server": "member"}),
}
INTERNAL_PREFIX = "statera-"
MAX_BODY = 64 * 1024 * 1024

_SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?(?P<rest>\s.*)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
_COMMENT = re.compile(r"# (?P<kind>HELP|TYPE) (?P<name>\S+)(?P<rest>.*)")


def octavia_name(name: str) -> tuple[str, dict[str, str]] | None:
    """The Octavia name of one of HAProxy's metric names and the label renames that go with
    it, or None when the metric is not published."""
    if not name.startswith("haproxy_"):
        return None
    kind, _, rest = name[len("haproxy_"):].partition("_")
    if kind == "process":
        if rest in MEMORY_POOL_METRICS:
            return "octavia_memory_" + rest, {}
        if rest in LOADBALANCER_METRICS:
            return "octavia_loadbalancer_" + rest, {}
        return None
    if kind in OBJECTS and rest:
        word, labels = OBJECTS[kind]
        return f"octavia_{word}_{rest}", labels
    return None


def rename(lines: Iterable[str]) -> list[str]:
    """HAProxy's exposition text, rewritten line by line (see the module's docstring)."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        comment = _COMMENT.fullmatch(line)
        if comment:
            renamed = octavia_name(comment["name"])
            if renamed:
                out.append(f"# {comment['kind']} {renamed[0]}{comment['rest']}")
            continue
        if line.startswith("#"):
            continue
        sample = _SAMPLE.fullmatch(line)
        if not sample:
            continue
        renamed = octavia_name(sample["name"])
        if renamed is None:
            continue
        name, label_names = renamed
        labels = _LABEL.findall(sample["labels"] or "")
        if any(key == "proxy" and value.startswith(INTERNAL_PREFIX) for key, value in labels):
            continue
        text = ",".join(f'{label_names.get(key, key)}="{value}"' for key, value in labels)
        out.append(f"{name}{{{text}}}{sample['rest']}" if labels else name + sample["rest"])
    return out


# ---- CPU and memory of this load balancer's HAProxy -----------------------------------------


def haproxy_pids() -> list[int]:
    """The HAProxy master (our parent) and its other children, or [] when our parent is not
    HAProxy (run by hand)."""
    master = os.getppid()
    try:
        if _read(f"/proc/{master}/comm").strip() != "haproxy":
            return []
        children = _read(f"/proc/{master}/task/{master}/children").split()
    except OSError:
        return []
    return [master] + [int(c) for c in children if int(c) != os.getpid()]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _cpu_seconds(pid: int) -> float:
    # Fields after the command name (which may hold blanks): utime and stime are 14th, 15th.
    fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    pages = int(_read(f"/proc/{pid}/statm").split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _mem_total_bytes() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


class Usage:
    """CPU percent between two scrapes (the first: since the proxy started) and memory
    percent of the HAProxy processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (time.monotonic(), self._cpu())

    @staticmethod
    def _cpu() -> float:
        total = 0.0
        for pid in haproxy_pids():
            try:
                total += _cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                continue  # a worker that just left
        return total

    def sample(self) -> tuple[float, float]:
        with self._lock:
            now, cpu = time.monotonic(), self._cpu()
            then, before = self._last
            self._last = (now, cpu)
        cpu_percent = max(0.0, cpu - before) / max(now - then, 1e-3) * 100
        rss = 0
        for pid in haproxy_pids():
            try:
                rss += _rss_bytes(pid)
            except (OSError, IndexError, ValueError):
                continue
        total = _mem_total_bytes()
        return cpu_percent, (rss / total * 100 if total else 0.0)


def usage_lines(cpu: float, memory: float) -> list[str]:
    return [
        "# HELP octavia_loadbalancer_cpu Load balancer CPU utilization (percentage).",
        "# TYPE octavia_loadbalancer_cpu gauge",
        f"octavia_loadbalancer_cpu {cpu:.1f}",
        "# HELP octavia_loadbalancer_memory Load balancer memory utilization (percentage).",
        "# TYPE octavia_loadbalancer_memory gauge",
        f"octavia_loadbalancer_memory {memory:.1f}",
    ]


# ---- the HTTP side --------------------------------------------------------------------------


def fetch(exporter: tuple[str, int], timeout: float = 10.0) -> list[str]:
    """HAProxy's exposition text (no proxy settings apply: it is on loopback)."""
    conn = http.client.HTTPConnection(exporter[0], exporter[1], timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read(MAX_BODY)
        if response.status != 200:
            raise OSError(f"the exporter answered {response.status}")
    finally:
        conn.close()
    return body.decode("utf-8", "replace").splitlines()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    exporter: tuple[str, int]
    usage: Usage

    def server_bind(self) -> None:
        # The instance started by a reload binds while the old one is still leaving.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # HTTPServer's own server_bind() looks up the host's FQDN: not wanted here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        try:
            lines = rename(fetch(self.server.exporter))
        except (OSError, http.client.HTTPException) as exc:
            self._answer(503, f"HAProxy's exporter cannot be read: {exc}\n")
            return
        cpu, memory = self.server.usage.sample()
        self._answer(200, "\n".join(usage_lines(cpu, memory) + lines) + "\n")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per scrape would only fill HAProxy's log


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def serve(listen: tuple[str, int], exporter: tuple[str, int]) -> _Server:
    server = _Server(listen, _Handler)
    server.exporter = exporter
    server.usage = Usage()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statera.agent.prometheus",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT to serve")
    parser.add_argument("--exporter", type=_address, required=True,
                        help="HOST:PORT of HAProxy's prometheus-exporter frontend")
    args = parser.parse_args(argv)
    server = serve(args.listen, args.exporter)

    def leave(signum: int, _frame: object) -> None:
        # serve_forever() runs in this thread: shut it down from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, leave)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
