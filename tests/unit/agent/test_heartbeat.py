"""The agent's heartbeat sender: ``show stat`` to message (pure), deltas across beats and
restarts, and sending over a real UDP socket on loopback."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from statera.agent import heartbeat as sender_mod
from statera.agent.heartbeat import (
    HeartbeatSender,
    StatSnapshot,
    build_message,
    member_status,
    parse_controller,
    parse_show_stat,
)
from statera.wire import heartbeat as wire

LI = "11111111-1111-4111-8111-111111111111"
POOL = "22222222-2222-4222-8222-222222222222"
M = [f"33333333-3333-4333-8333-33333333333{i}" for i in range(5)]
AMP = str(uuid.uuid4())
MASTER = b"x" * 32


def show_stat(bin_: int = 100, bout: int = 200, stot: int = 3, ereq: int = 1,
              scur: int = 2, fe_status: str = "OPEN") -> str:
    """As HAProxy 2.6 prints it (columns trimmed to the ones read; order as HAProxy's)."""
    backend = f"{POOL}:{LI}"
    rows = [
        "# pxname,svname,scur,stot,bin,bout,ereq,status,weight",
        f"{LI},FRONTEND,{scur},{stot},{bin_},{bout},{ereq},{fe_status},",
        f"{backend},{M[0]},0,0,0,0,,UP,1",
        f"{backend},{M[1]},0,0,0,0,,UP,0",
        f"{backend},{M[2]},0,0,0,0,,no check,1",
        f"{backend},{M[3]},0,0,0,0,,MAINT (via x/y),1",
        f"{backend},{M[4]},0,0,0,0,,DOWN 1/2,1",
        f"{backend},BACKEND,0,0,0,0,,UP,2",
        "statera-prometheus-internal,FRONTEND,0,0,0,0,0,OPEN,",
        "stats,BACKEND,0,0,0,0,,UP,0",
        "",
    ]
    return "\n".join(rows)


def test_parse_show_stat_keeps_only_our_objects() -> None:
    snap = parse_show_stat(show_stat())
    assert list(snap.listeners) == [LI]
    assert snap.listeners[LI] == {"status": "OPEN", "counters": (100, 200, 3, 1), "conns": 2}
    assert snap.pools == {f"{POOL}:{LI}": {"status": "UP", "members": {
        M[0]: "UP", M[1]: "DRAIN", M[2]: "no check", M[3]: "MAINT", M[4]: "DOWN 1/2"}}}


def test_member_status_words() -> None:
    assert member_status("MAINT (resolution)") == "MAINT"
    assert member_status("DRAIN (agent)") == "DRAIN"
    assert member_status("no check", "0") == "DRAIN"
    assert member_status("DOWN", "0") == "DOWN"
    assert member_status("") == "UNKNOWN"


def test_message_carries_deltas_except_current_connections() -> None:
    first, counters = build_message(AMP, 7, 1000.5, parse_show_stat(show_stat()), {})
    assert first["listeners"][LI]["stats"] == {"rx": 100, "tx": 200, "totconns": 3,
                                               "ereq": 1, "conns": 2}
    assert (first["id"], first["seq"], first["ver"], first["t"]) == (AMP, 7, 3, 1000.5)
    second, counters = build_message(
        AMP, 8, 1001, parse_show_stat(show_stat(bin_=150, bout=260, stot=5, scur=9)), counters)
    assert second["listeners"][LI]["stats"] == {"rx": 50, "tx": 60, "totconns": 2, "ereq": 0,
                                                "conns": 9}
    # A reload: the new worker's counters start again from zero.
    third, _ = build_message(AMP, 9, 1002,
                             parse_show_stat(show_stat(bin_=10, bout=20, stot=1, ereq=0)),
                             counters)
    assert third["listeners"][LI]["stats"]["rx"] == 10
    # The HM's parser accepts what we build.
    assert wire.parse_message(third).listeners[LI].bytes_in == 10


def test_parse_controller() -> None:
    assert parse_controller("10.0.0.1:5555") == ("10.0.0.1", 5555)
    assert parse_controller("[fd00::1]:5555") == ("fd00::1", 5555)
    for bad in ("10.0.0.1", ":5555", "10.0.0.1:0", "10.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_controller(bad)


@dataclass
class Conf:
    amphora_id: str
    controller_ip_port_list: tuple[str, ...]
    heartbeat_interval: int = 1
    heartbeat_key: str = ""
    heartbeat_key_file: str = ""
    heartbeat_mode: str = wire.PER_AMPHORA


@pytest.fixture
def receivers() -> Iterator[list[socket.socket]]:
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def key_file(tmp_path: Path, key: bytes) -> str:
    path = tmp_path / "heartbeat.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return str(path)


def addr(s: socket.socket) -> str:
    return f"127.0.0.1:{s.getsockname()[1]}"


def test_sender_signs_with_its_own_key_and_round_robins(
        tmp_path: Path, receivers: list[socket.socket]) -> None:
    own = wire.derive_amphora_key(MASTER, AMP)
    conf = Conf(AMP, (addr(receivers[0]), addr(receivers[1])),
                heartbeat_key_file=key_file(tmp_path, own))
    clock = iter([1000.0, 1000.0, 1001.0, 1001.0, 1002.0, 1002.0])
    sender = HeartbeatSender(lambda: conf, lambda: [show_stat()], clock=lambda: next(clock))
    try:
        assert sender.beat() and sender.beat() and sender.beat()
        decoder = wire.HeartbeatDecoder(wire.PER_AMPHORA, MASTER)
        first = decoder.decode(receivers[0].recv(70000))
        second = decoder.decode(receivers[1].recv(70000))
        third = decoder.decode(receivers[0].recv(70000))
    finally:
        sender.close()
    assert first.amphora_id == AMP and first.seq < second.seq < third.seq
    assert first.seq >= 1000 * 1000  # milliseconds: increasing across agent restarts
    assert first.listeners[LI].bytes_in == 100 and second.listeners[LI].bytes_in == 0


def test_sender_in_upstream_mode_with_an_upstream_style_key(
        receivers: list[socket.socket]) -> None:
    conf = Conf(AMP, (addr(receivers[0]),), heartbeat_key="an-upstream-shared-key",
                heartbeat_mode=wire.UPSTREAM)
    sender = HeartbeatSender(lambda: conf, lambda: [])
    try:
        assert sender.beat()
        got = wire.decode_upstream(receivers[0].recv(70000), b"an-upstream-shared-key")
    finally:
        sender.close()
    assert got.amphora_id == AMP and got.listeners == {}


def test_nothing_is_sent_without_controllers_or_key(tmp_path: Path) -> None:
    assert not HeartbeatSender(lambda: Conf(AMP, ()), lambda: []).beat()
    assert not HeartbeatSender(lambda: Conf(AMP, ("127.0.0.1:9",)), lambda: []).beat()
    missing = Conf(AMP, ("127.0.0.1:9",), heartbeat_key_file=str(tmp_path / "none"))
    assert not HeartbeatSender(lambda: missing, lambda: []).beat()


def test_counters_survive_a_restart_through_the_state_file(
        tmp_path: Path, receivers: list[socket.socket]) -> None:
    conf = Conf(AMP, (addr(receivers[0]),), heartbeat_key="k" * 20,
                heartbeat_mode=wire.UPSTREAM)
    state = tmp_path / "state.json"
    first = HeartbeatSender(lambda: conf, lambda: [show_stat()], state_file=state)
    first.beat()
    first.close()
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    again = HeartbeatSender(lambda: conf, lambda: [show_stat(bin_=130)], state_file=state)
    again.beat()
    again.close()
    receivers[0].recv(70000)
    got = wire.decode_upstream(receivers[0].recv(70000), b"k" * 20)
    assert got.listeners[LI].bytes_in == 30
    # A damaged state file is ignored, not fatal.
    state.write_text("{not json")
    assert HeartbeatSender(lambda: conf, lambda: [], state_file=state)._counters == {}


def test_run_loop_beats_until_stopped(receivers: list[socket.socket]) -> None:
    conf = Conf(AMP, (addr(receivers[0]),), heartbeat_key="k" * 20,
                heartbeat_mode=wire.UPSTREAM)
    sender = HeartbeatSender(lambda: conf, lambda: [])
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,))
    thread.start()
    try:
        wire.decode_upstream(receivers[0].recv(70000), b"k" * 20)
    finally:
        stop.set()
        thread.join(5)
        sender.close()
    assert not thread.is_alive() and sender.sent >= 1


def test_snapshot_merges_several_haproxies() -> None:
    snap = StatSnapshot()
    other = show_stat().replace(LI, "44444444-4444-4444-8444-444444444444")
    parse_show_stat(show_stat(), snap)
    parse_show_stat(other, snap)
    assert len(snap.listeners) == 2 and len(snap.pools) == 2
    assert sender_mod.load_key(Conf(AMP, (), heartbeat_key="abc")) == b"abc"
