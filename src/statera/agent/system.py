"""Facts about the host the agent runs on, for GET /details."""

from __future__ import annotations

import os
from pathlib import Path

_MEMINFO = {"MemTotal": "total", "MemFree": "free", "Buffers": "buffers", "Cached": "cached",
            "Shmem": "shared", "Slab": "slab", "Committed_AS": "committed_as"}


def memory() -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return values
    raw = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            raw[key] = int(parts[0])
    for key, name in _MEMINFO.items():
        values[name] = raw.get(key, 0)
    values["swap_used"] = raw.get("SwapTotal", 0) - raw.get("SwapFree", 0)
    return values


def cpu() -> dict[str, int]:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return {}
    numbers = [int(x) for x in fields]
    user, system, soft_irq = numbers[0], numbers[2], numbers[6] if len(numbers) > 6 else 0
    return {"total": sum(numbers), "user": user, "system": system, "soft_irq": soft_irq}


def disk(path: Path) -> dict[str, int]:
    target = path if path.exists() else Path("/")
    st = os.statvfs(target)
    return {"used": (st.f_blocks - st.f_bfree) * st.f_frsize,
            "available": st.f_bavail * st.f_frsize}


def load() -> list[str]:
    return [f"{x:.2f}" for x in os.getloadavg()]
