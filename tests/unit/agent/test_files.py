"""Atomic, private writes."""

from __future__ import annotations

import stat
from pathlib import Path

from statera.agent.files import md5_hex, write_atomic, write_file


def test_write_atomic_replaces_whole_files_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_atomic(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]      # no temp file left


def test_write_file_truncates_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "g"
    target.write_bytes(b"a much longer old content")
    target.chmod(0o644)
    write_file(target, b"short", mode=0o600)
    assert target.read_bytes() == b"short"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_md5_is_hex() -> None:
    assert md5_hex(b"") == "d41d8cd98f00b204e9800998ecf8427e"
