"""What the noop drivers did: every call is recorded (in memory, and as JSON lines in a file
when [noop_drivers] call_log is set) so tests and operators can see what a flow would have
done on real infrastructure."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any


class CallLog:
    def __init__(self, path: str | None = None, delay: float = 0.0, keep: int = 10000) -> None:
        self.path = path
        self.delay = delay
        self.keep = keep
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def record(self, driver: str, method: str, **args: Any) -> None:
        if self.delay:
            time.sleep(self.delay)
        entry = (driver, method, args)
        with self._lock:
            self.calls.append(entry)
            if len(self.calls) > self.keep:
                del self.calls[: len(self.calls) - self.keep]
            if self.path:
                line = json.dumps({"driver": driver, "method": method, "args": args,
                                   "pid": os.getpid(), "time": time.time()}, default=str)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")

    def of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [args for _d, meth, args in self.calls if meth == method]
