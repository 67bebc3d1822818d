"""In netns mode the health manager sees an amphora's death directly (the compute driver's
view: namespaces, agent, haproxy), not only through missing heartbeats: with heartbeat_timeout
at 10 s, a SINGLE amphora whose haproxy alone is killed is failed over within a few seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.testbed import Testbed

from statera.drivers.netns.amphora_ns import AmphoraNames
from tests.e2e.conftest import open_testbed
from tests.e2e.test_health import create_lb, serves, status_tree, wait_for

pytestmark = pytest.mark.slow
CONF = """
[health_manager]
heartbeat_timeout = 10
"""


@pytest.fixture(scope="module")
def dbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    yield from open_testbed(tmp_path_factory, "direct", extra_conf=CONF)


def _haproxy_pids(namespace: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True,
                         check=True).stdout
    pids = []
    for pid in out.split():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_haproxy_death_is_noticed_before_heartbeats_time_out(dbed: Testbed) -> None:
    client = dbed.api()
    keep = create_lb(dbed, client, "bystander")
    lb = create_lb(dbed, client, "victim")
    for one in (keep, lb):
        wait_for("heartbeats", lambda one=one: status_tree(client, one["id"])[
            "operating_status"] == "ONLINE", 15, dbed)
    [amp] = dbed.amphora_ids(client, lb["id"])
    pids = _haproxy_pids(AmphoraNames(amp).tenant_ns)
    assert pids, "no haproxy in the amphora's tenant namespace"
    killed = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    def failing_over() -> bool:
        state = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
        return bool(state["provisioning_status"] == "PENDING_UPDATE"
                    or amp not in dbed.amphora_ids(client, lb["id"]))

    detected = wait_for("failover started", failing_over, 9, dbed)
    wait_for("replacement serving", lambda: serves(lb["vip_address"]), 20, dbed)
    print(f"[health] haproxy killed: failover started after {detected:.2f} s, serving again "
          f"after {time.monotonic() - killed:.2f} s")
    assert detected <= 4.0  # the heartbeat path alone would take > 9 s here
    dbed.wait_lb_active(client, lb["id"])
    assert status_tree(client, keep["id"])["provisioning_status"] == "ACTIVE"
