"""Bounded client load from the host for failover measurements: one thread, a new
connection per request (so a VIP that moved is found at once), short timeouts, a pause
between requests, at most ``limit`` requests in ``seconds``. ``outage(event)`` is the longest
time without a successful answer from an event on; ``failures_after(t)`` counts failed
requests sent after ``t``."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    """One client thread: a new connection per request (so a moved VIP is found at once),
    short timeouts, a pause between requests; at most ``limit`` requests in ``seconds``."""

    vip: str
    seconds: float = 20.0
    limit: int = 4000
    pause: float = 0.005
    connect_timeout: float = 0.1
    results: list[tuple[float, float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _one(self) -> bool:
        try:
            with socket.create_connection((self.vip, 80), timeout=self.connect_timeout) as s:
                s.settimeout(2.0)
                s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return data.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
        except OSError:
            return False

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < end and \
                len(self.results) < self.limit:
            start = time.monotonic()
            ok = self._one()
            self.results.append((start, time.monotonic(), ok))
            time.sleep(self.pause)

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def wait_successes(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while sum(ok for _, _, ok in self.results) < count:
            assert time.monotonic() < deadline, "no traffic through the VIP"
            time.sleep(0.02)

    def outage(self, event: float) -> tuple[float, float]:
        """The longest time without a successful answer from ``event`` on (counted from
        the last success before it), and when that time ended."""
        ends = sorted(end for _, end, ok in self.results if ok)
        prev = max((e for e in ends if e <= event), default=event)
        worst, until = 0.0, event
        for e in ends:
            if e <= event:
                continue
            if e - prev > worst:
                worst, until = e - prev, e
            prev = e
        assert until > event or worst == 0.0, "nothing answered after the event"
        return worst, until

    def failures_after(self, t: float) -> int:
        return sum(1 for start, _, ok in self.results if start >= t and not ok)

    def summary(self, event: float) -> str:
        """Requests around ``event`` and every run of failures, in seconds from it."""
        around = [(round(s - event, 3), round(e - event, 3), ok) for s, e, ok in self.results
                  if -0.3 <= s - event <= 1.0]
        runs: list[list[float]] = []
        last_ok = True
        for s, e, ok in self.results:
            if not ok:
                if last_ok:
                    runs.append([round(s - event, 3), round(e - event, 3), 0])
                runs[-1][1:] = [round(e - event, 3), runs[-1][2] + 1]
            last_ok = ok
        return (f"{len(self.results)} requests; failure runs (from, to, count): {runs}; "
                f"around the event: {around[:40]}")

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
