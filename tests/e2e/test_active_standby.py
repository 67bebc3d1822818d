"""ACTIVE_STANDBY on real amphorae: two namespace amphorae running keepalived (VRRPv3,
0.2 s adverts, unicast, nopreempt), bounded load from the host while the pair is disturbed.

* exactly one amphora holds the VIP; both run haproxy with peers on their VRRP addresses;
* planned switchover (keepalived stopped gracefully on the MASTER): gap <= 0.3 s;
* MASTER crash (its haproxy and keepalived killed by PID): the BACKUP answers within 1 s,
  no failures after; the dead amphora is then failed over and the pair is whole again;
* the MASTER's haproxy alone killed: the check script fails, keepalived gives the VIP up;
* DP-9: VRRP between the peers blocked (an nft table of ours in one tenant namespace), then
  healed: one forwarder again within 10 s;
* the MASTER's namespaces deleted: the BACKUP answers within 1 s; the failover that follows
  does not wait on the dead agent;
* manual failover of the MASTER through the API: the VIP stays on the survivor, the load
  balancer ends ACTIVE with two amphorae, and traffic keeps flowing;
* with the health manager's default timing, a MASTER crash heals by itself: the standby
  answers within 1 s, and the pair is whole again without anyone asking.

The tests run in order on one load balancer; each starts from whatever pair the last left.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.activestandby.load import Load
from bench.activestandby.pair import (
    KEEPALIVED,
    TOPOLOGY_ENV,
    Pair,
    create_pair,
    start_bed,
    tenant_pids,
)
from bench.testbed import Testbed, in_namespace, missing_requirements

from statera.drivers.netns.amphora_ns import AmphoraNames, delete_namespace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    problem = missing_requirements() or (None if KEEPALIVED.exists() else "needs keepalived")
    if problem:
        pytest.skip(problem)
    # The health manager would fail over an amphora whose haproxy the tests kill, at its
    # own moment: these tests replace amphorae themselves, and the last one lets it act.
    testbed = start_bed(Path(tmp_path_factory.mktemp("activestandby")),
                        STATERA_HEALTH_MANAGER__HEARTBEAT_TIMEOUT="3600")
    try:
        yield testbed
    finally:
        testbed.close()


@pytest.fixture(scope="module")
def pair(bed: Testbed) -> Iterator[Pair]:
    p = create_pair(bed)
    try:
        yield p
    finally:
        p.close()


def _why(pair: Pair, load: Load, t: float) -> str:
    return f"{load.summary(t)}\n{pair.vrrp_logs()}\n{pair.bed.log_tail()}"


def _settle(load: Load, seconds: float) -> None:
    time.sleep(seconds)
    assert load.running(), "the load ended too early"


# ---- the tests ------------------------------------------------------------------------------

def test_pair_up_and_exactly_one_holds_the_vip(pair: Pair) -> None:
    amps = pair.amphorae()
    assert sorted(a["role"] for a in amps) == ["BACKUP", "MASTER"]
    master = next(a for a in amps if a["role"] == "MASTER")
    backup = next(a for a in amps if a["role"] == "BACKUP")
    # The first election takes ~0.7 s (3.5 adverts); holder() waits for it.
    assert pair.holder() == master["id"], pair.bed.diagnose()
    for amp in (master, backup):
        assert amp["vrrp_ip"] and amp["ha_ip"] == pair.vip and amp["vrrp_ip"] != pair.vip
        ns = AmphoraNames(amp["id"]).tenant_ns
        listening = subprocess.run(in_namespace(ns, ["ss", "-ltnH"]), capture_output=True,
                                   text=True, check=True).stdout
        # haproxy on both: the VIP (bound before it is local) and the peers port.
        assert f"{pair.vip}:80" in listening and f"{amp['vrrp_ip']}:1025" in listening
    with Load(pair.vip, seconds=5, limit=200) as load:
        load.wait_successes(20)
    assert load.failures_after(0) == 0


def test_planned_switchover_gap_is_under_300ms(pair: Pair) -> None:
    master = pair.holder()
    with Load(pair.vip) as load:
        load.wait_successes(30)
        event = time.monotonic()
        pair.agents.stop_vrrp(pair.amphora(master))  # SIGTERM: a priority-0 advert
        _settle(load, 2.0)
    gap, until = load.outage(event)
    print(f"[active-standby] planned switchover: longest gap {gap * 1000:.0f} ms")
    assert gap <= 0.3, _why(pair, load, event)
    assert load.failures_after(until) == 0, _why(pair, load, event)
    new_holder = pair.holder()
    assert new_holder != master
    # The old MASTER comes back as BACKUP (nopreempt): the VIP stays where it is.
    pair.agents.start_vrrp(pair.amphora(master))
    time.sleep(1.5)
    assert pair.holders() == [new_holder]


def test_master_crash_standby_answers_within_1s_then_the_pair_heals(pair: Pair) -> None:
    dead = pair.holder()
    pids = tenant_pids(dead)
    assert pids, "nothing runs in the MASTER's tenant namespace"
    for pid in pids:  # haproxy and keepalived of that amphora, nothing else runs there
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        assert cmd.endswith((b"haproxy", b"keepalived")), cmd
    with Load(pair.vip) as load:
        load.wait_successes(30)
        event = time.monotonic()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _settle(load, 3.0)
        gap, until = load.outage(event)
        print(f"[active-standby] MASTER killed: the standby answered {until - event:.3f} s "
              f"after the kill (longest gap {gap * 1000:.0f} ms)")
        assert until - event <= 1.0, _why(pair, load, event)
        assert load.failures_after(until) == 0, _why(pair, load, event)
        # A SIGKILLed keepalived leaves its VIP on the dead amphora's interface: the survivor
        # is the other holder (its gratuitous ARPs drew the traffic).
        (survivor,) = [h for h in pair.holders() if h != dead]

        # The dead amphora is replaced (by the health manager, or through the API): the
        # survivor keeps the VIP and traffic keeps flowing while it happens.
        mark = time.monotonic()
        pair.replace(dead)
        _settle(load, 0.5)
    assert load.failures_after(mark) == 0, _why(pair, load, mark)
    amps = pair.amphorae()
    assert len(amps) == 2 and dead not in {a["id"] for a in amps}
    assert {a["status"] for a in amps} == {"ALLOCATED"}
    assert {a["id"]: a["role"] for a in amps}[survivor] == "MASTER"
    assert pair.holders() == [survivor]


def test_haproxy_death_alone_moves_the_vip_through_the_check_script(pair: Pair) -> None:
    master = pair.holder()
    haproxies = [pid for pid in tenant_pids(master)
                 if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                 .endswith(b"haproxy")]
    assert haproxies
    with Load(pair.vip, seconds=60, limit=20000) as load:
        load.wait_successes(30)
        event = time.monotonic()
        for pid in haproxies:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # keepalived lives on; its check fails twice (1 s apart), then it gives the VIP up.
        deadline = time.monotonic() + 6
        while pair.holders() != [h for h in pair.holders() if h != master] or \
                not pair.holders():
            assert time.monotonic() < deadline, pair.vrrp_logs() + pair.bed.diagnose()
            time.sleep(0.05)
        _settle(load, 1.0)
        _, until = load.outage(event)
        print(f"[active-standby] MASTER's haproxy killed: the standby answered "
              f"{until - event:.2f} s after (check script: interval 1 s, fall 2)")
        assert until - event <= 5.0, _why(pair, load, event)
        assert load.failures_after(until) == 0, _why(pair, load, event)
        # The amphora without haproxy is replaced; the VIP stays where it went.
        survivor = pair.holder()
        mark = time.monotonic()
        pair.replace(master)
        _settle(load, 0.5)
    assert load.failures_after(mark) == 0, _why(pair, load, mark)
    assert pair.holders() == [survivor]
    assert len(pair.amphorae()) == 2


def test_dp9_vrrp_blocked_then_healed_one_forwarder_within_10s(pair: Pair) -> None:
    master = pair.holder()
    backup = next(a["id"] for a in pair.amphorae() if a["id"] != master)
    ns = AmphoraNames(backup).tenant_ns
    table = f"statera_vrrpblock_{secrets.token_hex(3)}"
    rules = (f"table inet {table} {{\n  chain input {{\n"
             "    type filter hook input priority -50; policy accept;\n"
             "    ip protocol vrrp drop\n  }\n}\n")
    with Load(pair.vip, seconds=60, limit=20000) as load:
        load.wait_successes(30)
        try:
            subprocess.run(in_namespace(ns, ["nft", "-f", "-"]), input=rules, text=True,
                           check=True)
            # The BACKUP hears no adverts: it takes the VIP too (split brain, by design).
            deadline = time.monotonic() + 5
            while len(pair.holders()) != 2:
                assert time.monotonic() < deadline, pair.vrrp_logs() + pair.bed.diagnose()
                time.sleep(0.05)
        finally:
            subprocess.run(in_namespace(ns, ["nft", "delete", "table", "inet", table]),
                           check=False, capture_output=True)
        healed = time.monotonic()
        while len(pair.holders()) != 1:
            assert time.monotonic() - healed < 10, pair.vrrp_logs() + pair.bed.diagnose()
            time.sleep(0.05)
        one = time.monotonic() - healed
        _settle(load, 3.0)
    failed = load.failures_after(healed - 10)
    print(f"[active-standby] DP-9: one forwarder {one:.2f} s after healing; "
          f"{failed} of {len(load.results)} requests failed while blocked and healing")
    # Traffic settles on the one forwarder (its gratuitous ARPs) within a second or two.
    assert load.failures_after(healed + one + 2.0) == 0, _why(pair, load, healed)


def test_master_namespaces_deleted_standby_answers_and_the_failover_is_quick(
        pair: Pair) -> None:
    dead = pair.holder()
    names = AmphoraNames(dead)
    with Load(pair.vip, seconds=60, limit=20000) as load:
        load.wait_successes(30)
        event = time.monotonic()
        delete_namespace(pair.bed.ip, names.tenant_ns)
        delete_namespace(pair.bed.ip, names.mgmt_ns)
        _settle(load, 2.0)
        _, until = load.outage(event)
        assert until - event <= 1.0, _why(pair, load, event)
        # Nothing left to ask on the dead amphora: the failover skips its agent.
        started = time.monotonic()
        pair.replace(dead)
        took = time.monotonic() - started
        _settle(load, 0.5)
    print(f"[active-standby] MASTER's namespaces deleted: the standby answered "
          f"{until - event:.3f} s after; the failover took {took:.1f} s")
    assert load.failures_after(until) == 0, _why(pair, load, event)
    assert took <= 20, took
    amps = pair.amphorae()
    assert len(amps) == 2 and dead not in {a["id"] for a in amps}


def test_manual_failover_of_the_master_keeps_the_vip_and_traffic(pair: Pair) -> None:
    master = pair.holder()
    survivor = next(a["id"] for a in pair.amphorae() if a["id"] != master)
    with Load(pair.vip, seconds=60, limit=20000) as load:
        load.wait_successes(30)
        event = time.monotonic()
        pair.replace(master)
        _settle(load, 1.0)
    # One planned switchover (the old MASTER's keepalived stops), nothing else.
    gap, until = load.outage(event)
    print(f"[active-standby] failover of the MASTER: longest gap {gap * 1000:.0f} ms, "
          f"{load.failures_after(event)} failed of {len(load.results)} requests")
    assert gap <= 1.0, _why(pair, load, until - gap)
    assert load.failures_after(until) == 0, _why(pair, load, until - gap)
    amps = pair.amphorae()
    assert len(amps) == 2 and master not in {a["id"] for a in amps}
    assert {a["id"]: a["role"] for a in amps} == {
        survivor: "MASTER", next(a["id"] for a in amps if a["id"] != survivor): "BACKUP"}
    assert pair.holders() == [survivor]
    # Gone from the host, ports freed.
    assert not [n for n in pair.bed.ip.namespaces() if AmphoraNames(master).key in n]
    ports = pair.client.get("/v2.0/ports", params={"device_id": master}).json()["ports"]
    assert ports == []


def test_the_health_manager_heals_the_pair_after_a_master_crash(pair: Pair) -> None:
    # statera up again, with the health manager's default timing (the worker resumes; the
    # amphorae never stopped).
    pair.bed.run_statera(**{TOPOLOGY_ENV: "ACTIVE_STANDBY"})
    time.sleep(3.0)  # heartbeats heard again
    dead = pair.holder()
    with Load(pair.vip, seconds=60, limit=20000) as load:
        load.wait_successes(30)
        event = time.monotonic()
        for pid in tenant_pids(dead):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(1.5)
        _, until = load.outage(event)
        assert until - event <= 1.0, _why(pair, load, event)
        # Nobody asks: the health manager notices and fails the dead amphora over.
        pair.wait_whole(dead, timeout=30)
        healed = time.monotonic() - event
        _settle(load, 0.5)
    print(f"[active-standby] health manager: standby answered {until - event:.3f} s after "
          f"the kill; pair whole again {healed:.1f} s after it")
    assert load.failures_after(until) == 0, _why(pair, load, event)
    assert len(pair.holders()) == 1
