"""The amphora's heartbeat sender: every ``heartbeat_interval`` seconds, read each running
HAProxy's ``show stat`` (through its master CLI socket, ``@1``: the current worker), turn it
into a heartbeat v3 message (wire/heartbeat.py) and send it over UDP to the next controller of
``controller_ip_port_list`` (round robin, as upstream: every controller writes what it receives
to the database, so sending each message to all of them would count traffic twice).

Statistics are deltas since the previous message; the last absolute counters are kept in a
small state file so an agent restart neither loses nor double-counts traffic. A counter that
went down means HAProxy started again (a reload's new worker starts at zero): its value is the
delta. Sequence numbers start from the clock in milliseconds, so they keep increasing across
agent restarts, which the health manager's replay check requires.

The key is read from ``heartbeat_key_file`` (hex, 0600, written by the controller: the
amphora's own derived key in per_amphora mode, the shared key in upstream mode) or, as in
upstream's amphora-agent.conf, from ``heartbeat_key`` (its UTF-8 bytes).

``start_heartbeat_sender(config_source, haproxy)`` runs it on a daemon thread and returns a
handle whose ``stop()`` ends it. ``config_source`` is called on every beat, so a new agent
config (PUT /config: controllers, interval) applies from the next message on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from statera.wire import heartbeat as wire

if TYPE_CHECKING:
    from statera.agent.haproxy import HaproxyManager

LOG = logging.getLogger(__name__)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# (bytes in, bytes out, connections made, request errors): the counters sent as deltas.
Counters = tuple[int, int, int, int]


class HeartbeatConfig(Protocol):
    @property
    def amphora_id(self) -> str: ...
    @property
    def controller_ip_port_list(self) -> tuple[str, ...]: ...
    @property
    def heartbeat_interval(self) -> int: ...
    @property
    def heartbeat_key(self) -> str: ...
    @property
    def heartbeat_key_file(self) -> str: ...
    @property
    def heartbeat_mode(self) -> str: ...


# ---- show stat -> message (pure) -------------------------------------------------------------


@dataclass
class StatSnapshot:
    """What one or more ``show stat`` outputs say, absolute counters included."""

    listeners: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _is_backend_name(name: str) -> bool:
    pool_id, sep, listener_id = name.partition(":")
    return bool(_UUID.match(pool_id)) and (not sep or bool(_UUID.match(listener_id)))


def member_status(raw: str, weight: str | None = None) -> str:
    """HAProxy's server status in the few words heartbeats use: ``UP``, ``UP 1/3``, ``DOWN``,
    ``DOWN 1/2``, ``NOLB``, ``DRAIN``, ``MAINT``, ``no check``. Details in parentheses
    ("MAINT (via …)", "DOWN (agent)") are dropped. A server that is up (or unchecked) with
    weight 0 gets no new connections: HAProxy still says UP, the heartbeat says DRAIN."""
    status = raw.split(" (", 1)[0].strip()
    if status.startswith("MAINT"):
        return "MAINT"
    if status.startswith("DRAIN"):
        return "DRAIN"
    if weight is not None and weight.strip() == "0" and (status.startswith("UP")
                                                          or status == "no check"):
        return "DRAIN"
    return status[:wire.MAX_STATUS_LEN] or "UNKNOWN"


def parse_show_stat(csv_text: str, into: StatSnapshot | None = None) -> StatSnapshot:
    """Frontends named by a listener id, backends named ``<pool id>:<listener id>`` and their
    servers named by a member id; everything else (the internal Prometheus frontend, stats
    pages) is left out."""
    snap = into if into is not None else StatSnapshot()
    text = csv_text.lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        pxname, svname = row.get("pxname") or "", row.get("svname") or ""
        status = (row.get("status") or "").strip()
        if svname == "FRONTEND":
            if _UUID.match(pxname):
                snap.listeners[pxname] = {
                    "status": status[:wire.MAX_STATUS_LEN] or "UNKNOWN",
                    "counters": (_int(row.get("bin")), _int(row.get("bout")),
                                 _int(row.get("stot")), _int(row.get("ereq"))),
                    "conns": _int(row.get("scur")),
                }
        elif not _is_backend_name(pxname):
            continue
        elif svname == "BACKEND":
            pool = snap.pools.setdefault(pxname, {"status": "UP", "members": {}})
            pool["status"] = status[:wire.MAX_STATUS_LEN] or "UNKNOWN"
        elif _UUID.match(svname):
            pool = snap.pools.setdefault(pxname, {"status": "UP", "members": {}})
            pool["members"][svname] = member_status(status, row.get("weight"))
    return snap


def _delta(now: int, before: int | None) -> int:
    if before is None or now < before:
        return now
    return now - before


def build_message(amphora_id: str, seq: int, sent_at: float, snap: StatSnapshot,
                  previous: dict[str, Counters]) -> tuple[dict[str, Any], dict[str, Counters]]:
    """The heartbeat message, and the absolute counters to remember for the next one."""
    listeners: dict[str, Any] = {}
    counters: dict[str, Counters] = {}
    for lid, entry in snap.listeners.items():
        cur: Counters = entry["counters"]
        before = previous.get(lid)
        d = [_delta(cur[i], before[i] if before else None) for i in range(4)]
        listeners[lid] = {"status": entry["status"],
                          "stats": {"rx": d[0], "tx": d[1], "totconns": d[2], "ereq": d[3],
                                    "conns": entry["conns"]}}
        counters[lid] = cur
    pools = {name: {"status": p["status"], "members": dict(p["members"])}
             for name, p in snap.pools.items()}
    message = {"id": amphora_id, "seq": seq, "ver": wire.VERSION, "t": round(sent_at, 3),
               "listeners": listeners, "pools": pools}
    return message, counters


def parse_controller(entry: str) -> tuple[str, int]:
    """``10.0.0.1:5555`` or ``[fd00::1]:5555`` -> (host, port)."""
    host, _, port = entry.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not an address:port pair: {entry!r}")
    return host, int(port)


def load_key(conf: HeartbeatConfig) -> bytes:
    """The key this amphora signs with; b'' when it has none (then nothing is sent)."""
    path = getattr(conf, "heartbeat_key_file", "") or ""
    if path:
        data = Path(path).read_text().strip()
        return bytes.fromhex(data)
    return (conf.heartbeat_key or "").encode()


# ---- the sender ------------------------------------------------------------------------------


class StatsSource(Protocol):
    def __call__(self) -> Iterable[str]:
        """One ``show stat`` CSV text per running HAProxy."""
        ...


def haproxy_stats(haproxy: HaproxyManager) -> StatsSource:
    """``show stat`` of every running load balancer of this agent."""
    from statera.agent.haproxy import master_cli

    def read() -> list[str]:
        out = []
        for lb_id in haproxy.lb_ids():
            if not haproxy.running(lb_id):
                continue
            try:
                out.append(master_cli(haproxy.paths(lb_id).master_socket, "@1 show stat",
                                      timeout=2.0))
            except OSError as exc:
                LOG.debug("no statistics from haproxy of %s: %s", lb_id, exc)
        return out

    return read


class HeartbeatSender:
    def __init__(self, config_source: Callable[[], HeartbeatConfig], stats: StatsSource, *,
                 state_file: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config_source = config_source
        self.stats = stats
        self.state_file = state_file
        self.clock = clock
        self.sent = 0
        self._seq = 0
        self._next_controller = 0
        self._counters: dict[str, Counters] = self._load_state()
        self._sockets: dict[int, socket.socket] = {}
        self._key_cache: tuple[tuple[str, str], bytes] | None = None

    def _load_state(self) -> dict[str, Counters]:
        if self.state_file is None:
            return {}
        try:
            raw = json.loads(self.state_file.read_text())
            return {str(k): (int(v[0]), int(v[1]), int(v[2]), int(v[3]))
                    for k, v in raw["counters"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return {}

    def _save_state(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"counters": self._counters}, f)
            os.replace(tmp, self.state_file)
        except OSError as exc:
            LOG.warning("could not save heartbeat counters: %s", exc)

    def _key(self, conf: HeartbeatConfig) -> bytes:
        ident = (getattr(conf, "heartbeat_key_file", "") or "", conf.heartbeat_key or "")
        if self._key_cache is None or self._key_cache[0] != ident:
            self._key_cache = (ident, load_key(conf))
        return self._key_cache[1]

    def next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self.clock() * 1000))
        return self._seq

    def build(self, conf: HeartbeatConfig) -> bytes:
        """Read HAProxy and make the next datagram (the counters advance)."""
        snap = StatSnapshot()
        for text in self.stats():
            parse_show_stat(text, snap)
        now = self.clock()
        message, counters = build_message(conf.amphora_id.lower(), self.next_seq(), now, snap,
                                          self._counters)
        packet = wire.encode(message, self._key(conf), conf.heartbeat_mode or wire.PER_AMPHORA)
        if counters != self._counters:
            self._counters = counters
            self._save_state()
        return packet

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = self._sockets[family] = socket.socket(family, socket.SOCK_DGRAM)
        return sock

    def beat(self) -> bool:
        """Send one heartbeat; False when there is nowhere to send it or no key."""
        conf = self.config_source()
        controllers = list(conf.controller_ip_port_list)
        if not controllers:
            return False
        try:
            if not self._key(conf):
                return False
        except (OSError, ValueError) as exc:
            LOG.error("heartbeat key unreadable (%s): no heartbeats sent", type(exc).__name__)
            return False
        packet = self.build(conf)
        if len(packet) > wire.MAX_DATAGRAM:
            LOG.error("heartbeat of %d bytes is too large to send", len(packet))
            return False
        entry = controllers[self._next_controller % len(controllers)]
        self._next_controller += 1
        try:
            host, port = parse_controller(entry)
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM,
                                      flags=socket.AI_NUMERICHOST)[0]
            self._socket(info[0]).sendto(packet, info[4])
        except (OSError, ValueError) as exc:
            LOG.warning("heartbeat to %s not sent: %s", entry, exc)
            return False
        self.sent += 1
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.beat()
                interval = max(1, int(self.config_source().heartbeat_interval))
            except Exception:  # the sender must outlive any one bad beat
                LOG.exception("heartbeat failed")
                interval = 1
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def close(self) -> None:
        for sock in self._sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()


@dataclass
class HeartbeatHandle:
    sender: HeartbeatSender
    thread: threading.Thread
    _stop: threading.Event

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.thread.join(timeout)
        self.sender.close()


def start_heartbeat_sender(config_source: Callable[[], HeartbeatConfig],
                           haproxy: HaproxyManager, *,
                           state_file: Path | None = None) -> HeartbeatHandle:
    """Send heartbeats on a daemon thread until the handle's ``stop()``. The state file
    defaults to ``<haproxy base path>/heartbeat-state.json``."""
    if state_file is None:
        state_file = Path(haproxy.base_path) / "heartbeat-state.json"
        with contextlib.suppress(OSError):
            state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sender = HeartbeatSender(config_source, haproxy_stats(haproxy), state_file=state_file)
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="heartbeat", daemon=True)
    thread.start()
    return HeartbeatHandle(sender, thread, stop)
