"""The one wrapper the agent runs programs through."""

from __future__ import annotations

import os

from statera.agent import proc


def test_run_captures_output_and_status() -> None:
    ok = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (ok.returncode, ok.ok) == (3, False)
    assert "out" in ok.output and "err" in ok.output


def test_run_reports_missing_programs_and_timeouts() -> None:
    assert proc.run(["/nonexistent/prog"]).returncode == 127
    assert proc.run(["sleep", "5"], timeout=0.2).returncode == 124


def test_children_never_see_the_systemd_notify_socket(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    assert "NOTIFY_SOCKET" not in proc.run(["env"]).output
    assert os.environ["NOTIFY_SOCKET"]


def test_netns_prefix() -> None:
    assert proc.netns_prefix("") == []
    assert proc.netns_prefix("ns1") == ["ip", "netns", "exec", "ns1"]
