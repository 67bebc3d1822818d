"""Housekeeping's sweep with the real netns compute driver: an amphora on the host that no
row owns (a crash between build and record, a row purged by hand) is removed completely;
one with a live row is left alone."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from statera.db import models as m
from statera.db.types import utcnow
from statera.drivers.compute.base import AmphoraBuild
from statera.drivers.compute.netns import NetnsComputeDriver
from statera.drivers.netns.amphora_ns import AmphoraNames
from statera.drivers.netns.host import BridgeSpec
from statera.drivers.netns.ip import Ip
from statera.housekeeping.sweep import sweep
from tests.conftest import build_api


def test_sweep_removes_host_instances_no_amphora_owns(tmp_path: Path, test_bridge: BridgeSpec,
                                                      ip: Ip) -> None:
    api = build_api(tmp_path / "api")
    compute = NetnsComputeDriver(
        state_dir=tmp_path / "netns", mgmt_bridge=test_bridge.name, mgmt_cidr=test_bridge.cidr,
        mgmt_host_address=test_bridge.host_address,
        agent_command=lambda home: ["sleep", "300"], ip=ip)
    drivers = dataclasses.replace(api.drivers, compute=compute)
    owned, stray = str(uuid.uuid4()), str(uuid.uuid4())
    with api.deps.db.write() as s:
        s.add(m.Amphora(id=owned, status="ALLOCATED", compute_id=owned))
    try:
        compute.build(AmphoraBuild(amphora_id=owned))
        compute.build(AmphoraBuild(amphora_id=stray))
        assert sorted(compute.instances()) == sorted([owned, stray])

        swept = sweep(api.deps.db, drivers, api.deps.settings.house_keeping, utcnow())

        assert swept.host_instances == [stray]
        assert compute.instances() == [owned]
        names = AmphoraNames(stray)
        assert not {names.mgmt_ns, names.tenant_ns} & set(ip.namespaces())
        assert not ip.link_exists(names.mgmt_veth)
        assert compute.status(owned).status == "ACTIVE"
    finally:
        compute.delete(owned)
        compute.delete(stray)
        api.deps.db.dispose()
