"""ACTIVE_STANDBY flows with the noop drivers: VRRP addresses, the VRRP group, keepalived
configured on both amphorae, and failovers that keep the VIP where it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from statera.db import models as m
from statera.worker.steps.vrrp import VRRP_PORT_OWNER
from tests.conftest import Api, build_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = build_api(tmp_path, STATERA_CONTROLLER_WORKER__LOADBALANCER_TOPOLOGY="ACTIVE_STANDBY")
    yield a
    a.client.close()
    a.deps.db.dispose()


def _live(api: Api, lb_id: str) -> dict[str, m.Amphora]:
    with api.deps.db.read() as s:
        rows = s.scalars(sa.select(m.Amphora).where(
            m.Amphora.load_balancer_id == lb_id, m.Amphora.status != "DELETED")).all()
        s.expunge_all()
    return {a.id: a for a in rows}


def _vrrp_ports(api: Api) -> dict[str, str]:
    with api.deps.db.read() as s:
        return {p.device_id or "": p.ip_address for p in s.scalars(
            sa.select(m.Port).where(m.Port.device_owner == VRRP_PORT_OWNER))}


def _calls(api: Api, method: str) -> list[str]:
    return [c["amphora_id"] for c in api.drivers.calls.of(method)]


def _status(api: Api, lb_id: str) -> str:
    return str(api.get(f"/v2/lbaas/loadbalancers/{lb_id}")["loadbalancer"][
        "provisioning_status"])


def test_create_gives_each_amphora_a_vrrp_address_and_starts_keepalived(api: Api) -> None:
    lb = api.make_lb()
    assert _status(api, lb["id"]) == "ACTIVE"
    amps = _live(api, lb["id"])
    by_role = {a.role: a for a in amps.values()}
    assert set(by_role) == {"MASTER", "BACKUP"}
    assert (by_role["MASTER"].vrrp_priority, by_role["BACKUP"].vrrp_priority) == (100, 90)
    ports = _vrrp_ports(api)
    assert ports == {a.id: a.vrrp_ip for a in amps.values()}
    assert len(set(ports.values()) | {lb["vip_address"]}) == 3
    for a in amps.values():
        assert (a.ha_ip, a.vrrp_interface, a.vrrp_id) == (lb["vip_address"], "eth1", 1)
    configs = {c["amphora_id"]: c for c in api.drivers.calls.of("update_vrrp_config")}
    assert set(configs) == set(amps)
    for amp_id, call in configs.items():
        (other,) = [a for a in amps.values() if a.id != amp_id]
        assert call["peers"] == [other.vrrp_ip]
    # keepalived starts only after haproxy has its config; the MASTER first.
    assert _calls(api, "start_vrrp") == [by_role["MASTER"].id, by_role["BACKUP"].id]
    names = [n for _d, n, _a in api.drivers.calls.calls]
    assert names.index("start_vrrp") > max(i for i, n in enumerate(names) if n == "apply_config")
    with api.deps.db.read() as s:
        group = s.get(m.VrrpGroup, lb["id"])
        assert group is not None
        assert (group.vrrp_auth_type, group.advert_int) == (None, 0.2)


def test_amphora_failover_of_the_master_keeps_the_vip_on_the_survivor(api: Api) -> None:
    lb = api.make_lb()
    by_role = {a.role: a for a in _live(api, lb["id"]).values()}
    master, backup = by_role["MASTER"], by_role["BACKUP"]
    api.put(f"/v2/octavia/amphorae/{master.id}/failover", {}, status=202)
    api.settle()
    assert _status(api, lb["id"]) == "ACTIVE"
    amps = _live(api, lb["id"])
    assert master.id not in amps and backup.id in amps
    (new,) = [a for a in amps.values() if a.id != backup.id]
    # The survivor holds the VIP and is MASTER now; the new amphora joins as BACKUP.
    assert (amps[backup.id].role, amps[backup.id].vrrp_priority) == ("MASTER", 100)
    assert (new.role, new.vrrp_priority) == ("BACKUP", 90)
    # The old MASTER's keepalived stops before the pair is reconfigured; the survivor is
    # reloaded, the new one started.
    assert _calls(api, "stop_vrrp") == [master.id]
    assert _calls(api, "reload_vrrp") == [backup.id]
    assert _calls(api, "start_vrrp")[-1] == new.id
    names = [n for _d, n, _a in api.drivers.calls.calls]
    assert names.index("stop_vrrp") < names.index("reload_vrrp")
    assert set(_vrrp_ports(api)) == {backup.id, new.id}


def test_a_survivor_held_by_the_circuit_breaker_is_still_reconfigured(api: Api) -> None:
    """FAILOVER_STOPPED amphorae still serve: when its peer is replaced, the survivor must
    learn the new peer (else it would ignore the new one's adverts: two MASTERs)."""
    lb = api.make_lb()
    by_role = {a.role: a for a in _live(api, lb["id"]).values()}
    master, backup = by_role["MASTER"], by_role["BACKUP"]
    with api.deps.db.write() as s:
        s.execute(sa.update(m.Amphora).where(m.Amphora.id == backup.id)
                  .values(status="FAILOVER_STOPPED"))
    api.drivers.calls.calls.clear()
    api.put(f"/v2/octavia/amphorae/{master.id}/failover", {}, status=202)
    api.settle()
    amps = _live(api, lb["id"])
    (new,) = [a for a in amps.values() if a.id != backup.id]
    assert (amps[backup.id].role, new.role) == ("MASTER", "BACKUP")
    peers = {c["amphora_id"]: c["peers"] for c in api.drivers.calls.of("update_vrrp_config")}
    assert peers == {backup.id: [new.vrrp_ip], new.id: [amps[backup.id].vrrp_ip]}
    assert _calls(api, "reload_vrrp") == [backup.id]


def test_load_balancer_failover_replaces_one_amphora_at_a_time(api: Api) -> None:
    lb = api.make_lb()
    by_role = {a.role: a for a in _live(api, lb["id"]).values()}
    api.drivers.calls.calls.clear()
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
    api.settle()
    assert _status(api, lb["id"]) == "ACTIVE"
    amps = _live(api, lb["id"])
    assert len(amps) == 2 and not set(amps) & {a.id for a in by_role.values()}
    assert sorted(a.role for a in amps.values()) == ["BACKUP", "MASTER"]
    # The BACKUP went first; each round built one amphora and retired one.
    assert _calls(api, "stop_vrrp") == [by_role["BACKUP"].id, by_role["MASTER"].id]
    builds = _calls(api, "build")
    assert len(builds) == 2
    deleted = [c["compute_id"] for c in api.drivers.calls.of("delete")]
    assert deleted == [by_role["BACKUP"].id, by_role["MASTER"].id]
    # The amphora built in the first round survived the second and holds the VIP.
    assert (amps[builds[0]].role, amps[builds[1]].role) == ("MASTER", "BACKUP")
    assert set(_vrrp_ports(api)) == set(amps)


def test_failed_second_round_ends_in_error_and_keeps_the_first_replacement(api: Api) -> None:
    from statera.domain.errors import StepFailed

    lb = api.make_lb()
    compute = api.drivers.compute
    real_build = compute.build
    builds: list[str] = []

    def second_fails(request):  # type: ignore[no-untyped-def]
        builds.append(request.amphora_id)
        if len(builds) == 2:
            raise StepFailed("no capacity")
        return real_build(request)

    compute.build = second_fails  # type: ignore[method-assign]
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
    api.settle()
    assert _status(api, lb["id"]) == "ERROR"
    amps = _live(api, lb["id"])
    assert builds[0] in amps and amps[builds[0]].status == "ALLOCATED"
    assert builds[1] not in amps or amps[builds[1]].status == "DELETED"
    # Never two MASTERs, and the first round's amphora kept its address.
    assert [a.role for a in amps.values() if a.status == "ALLOCATED"].count("MASTER") <= 1
    assert builds[0] in _vrrp_ports(api)


def test_delete_frees_the_vrrp_addresses_and_the_group(api: Api) -> None:
    lb = api.make_lb()
    api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    api.settle()
    assert _vrrp_ports(api) == {}
    with api.deps.db.read() as s:
        assert s.get(m.VrrpGroup, lb["id"]) is None


def test_single_topology_never_touches_vrrp(tmp_path: Path) -> None:
    api = build_api(tmp_path)
    try:
        lb = api.make_lb()
        api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
        api.settle()
        assert _status(api, lb["id"]) == "ACTIVE"
        for method in ("update_vrrp_config", "start_vrrp", "reload_vrrp", "stop_vrrp"):
            assert api.drivers.calls.of(method) == []
        assert _vrrp_ports(api) == {}
        assert [a.role for a in _live(api, lb["id"]).values()] == ["STANDALONE"]
    finally:
        api.client.close()
        api.deps.db.dispose()


def test_lb_failover_resumes_at_every_step_boundary(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """CP-2 for the two-round failover of a pair: a worker killed after any saved step
    leaves an operation the next worker finishes, with one MASTER, two amphorae and their
    VRRP addresses only."""
    from statera.worker.runner import Worker
    from tests.unit.worker.test_resume import _expire_leases, _run_with_crash, _states

    for n in range(1, 60):
        api = build_api(tmp_path / f"n{n}",
                        STATERA_CONTROLLER_WORKER__LOADBALANCER_TOPOLOGY="ACTIVE_STANDBY")
        try:
            lb = api.make_lb()
            before = set(_live(api, lb["id"]))
            api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, status=202)
            died = _run_with_crash(api, monkeypatch, n)
            if died:
                _expire_leases(api)
                Worker(api.deps, api.drivers, name="second").run_until_idle()
            assert _states(api)[-1] == "SUCCEEDED", (n, _states(api))
            assert _status(api, lb["id"]) == "ACTIVE"
            amps = _live(api, lb["id"])
            assert len(amps) == 2 and not set(amps) & before, n
            assert sorted(a.role for a in amps.values()) == ["BACKUP", "MASTER"], n
            assert set(_vrrp_ports(api)) == set(amps), n
        finally:
            api.client.close()
            api.deps.db.dispose()
        if not died:
            break
    else:
        raise AssertionError("the failover never finished without a crash")
