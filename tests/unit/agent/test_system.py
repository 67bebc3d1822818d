"""Host facts for GET /details."""

from __future__ import annotations

from pathlib import Path

from statera.agent import system


def test_facts_have_the_upstream_keys(tmp_path: Path) -> None:
    assert {"total", "free", "buffers", "cached", "swap_used", "shared", "slab",
            "committed_as"} <= set(system.memory())
    assert {"total", "user", "system", "soft_irq"} == set(system.cpu())
    disk = system.disk(tmp_path / "missing")
    assert disk["available"] > 0
    assert len(system.load()) == 3
