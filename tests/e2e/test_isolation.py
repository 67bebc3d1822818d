"""SEC-7: tenant isolation on one host. From a member's namespace and from a load balancer's
own VIP (tenant) namespace, none of these may be reached: the agent port on any amphora's
management address, the health manager's UDP port, sockets of the host (on its management
address or its tenant-bridge address, even one bound to all addresses), and another tenant
network's load balancer. Every probe is bounded by about a second.

The member namespace plays a hostile tenant: it adds a default route through the host's
address on its bridge (its own namespace, its own route), so that packets for other networks
are at least sent to the host. Positive controls show each probe can succeed where it should.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.testbed import MEMBER_PORT, Testbed, missing_requirements

from tests.e2e.traffic_lb import Lb, shared_lb

pytestmark = pytest.mark.slow

AGENT_PORT = 9443
HM_PORT = 5555  # the testbed's health manager listens on the default port
TIMEOUT = 1.0
REACHED = ("open", "refused")  # a stack answered: the packet got there

# Probes many targets at once from inside a namespace; prints {"host:port/proto": verdict}.
PROBES = """
import errno, json, socket, sys, threading
timeout = float(sys.argv[1])
targets = json.loads(sys.argv[2])
out = {}
def probe(host, port, proto):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        if proto == "udp":
            s.send(b"probe"); s.recv(1)
        verdict = "open"
    except ConnectionRefusedError:
        verdict = "refused"
    except (socket.timeout, TimeoutError):
        verdict = "timeout"
    except OSError as exc:
        unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        verdict = "unreachable" if unreachable else str(exc)
    finally:
        s.close()
    out[f"{host}:{port}/{proto}"] = verdict
threads = [threading.Thread(target=probe, args=t) for t in targets]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A testbed with a second tenant network (its own bridge) for another tenant's LB."""
    problem = missing_requirements()
    if problem:
        pytest.skip(problem)
    testbed = Testbed.start(Path(tmp_path_factory.mktemp("isolation")), members=1,
                            extra_networks=1)
    try:
        yield testbed
    finally:
        testbed.close()


@pytest.fixture(scope="module")
def lb_a(bed: Testbed) -> Iterator[Lb]:
    yield from shared_lb(bed, "tenant-a")


@pytest.fixture(scope="module")
def lb_b(bed: Testbed) -> Iterator[Lb]:
    client = bed.api()
    _, net, _ = bed.extra_networks[0]
    subnets = client.get("/v2.0/subnets").json()["subnets"]
    subnet = next(s["id"] for s in subnets if s["cidr"] == str(net))
    yield from shared_lb(bed, "tenant-b", subnet_id=subnet)


def probe(bed: Testbed, namespace: str, targets: list[tuple[str, int, str]]) -> dict[str, str]:
    done = bed.run_in(namespace, PROBES, str(TIMEOUT), json.dumps(targets), timeout=30)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def mgmt_address(lb: Lb) -> str:
    amphorae = lb.client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb.id})
    address: str = amphorae.json()["amphorae"][0]["lb_network_ip"]
    return address


def tenant_namespace(lb: Lb) -> str:
    from statera.drivers.netns.amphora_ns import AmphoraNames

    return AmphoraNames(lb.bed.amphora_ids(lb.client, lb.id)[0]).tenant_ns


@pytest.fixture(scope="module")
def host_socket(bed: Testbed) -> Iterator[int]:
    """A TCP socket of the host bound to all addresses, like any host daemon's."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_tenants_reach_nothing_but_their_own_network(
        bed: Testbed, lb_a: Lb, lb_b: Lb, host_socket: int) -> None:
    member = bed.members[0]
    listener = lb_a.listener(80)
    lb_a.pool([member], listener_id=listener["id"])
    lb_b.listener(80)
    host_mgmt = _host_mgmt_address(bed)
    host_tenant = bed.host_address
    _, net_b, _ = bed.extra_networks[0]
    host_tenant_b = str(next(net_b.hosts()))
    amp_a, amp_b = mgmt_address(lb_a), mgmt_address(lb_b)
    api_port = int(bed.url.rsplit(":", 1)[1])
    free_udp = _free_udp_port()

    # The hostile tenant sends everything it cannot reach directly to the host.
    bed.ip.in_ns(member.namespace, "route", "replace", "default", "via", host_tenant)

    forbidden = [
        (amp_a, AGENT_PORT, "tcp"), (amp_b, AGENT_PORT, "tcp"),
        (host_mgmt, HM_PORT, "udp"), (host_tenant, HM_PORT, "udp"),
        (host_mgmt, free_udp, "udp"), (host_tenant, free_udp, "udp"),
        (host_mgmt, host_socket, "tcp"), (host_tenant, host_socket, "tcp"),
        (host_tenant_b, host_socket, "tcp"),
        (host_mgmt, api_port, "tcp"), (host_tenant, api_port, "tcp"),
        (host_mgmt, AGENT_PORT, "tcp"), (host_tenant, 22, "tcp"),
        (lb_b.vip, 80, "tcp"),
    ]
    controls = [(lb_a.vip, 80, "tcp")]
    for namespace, allowed in ((member.namespace, controls),
                               (tenant_namespace(lb_a), [(member.address, MEMBER_PORT, "tcp")])):
        seen = probe(bed, namespace, forbidden + allowed)
        reached = {t: v for t, v in seen.items() if v in REACHED
                   and t not in {f"{h}:{p}/{x}" for h, p, x in allowed}}
        assert reached == {}, f"from {namespace}: {reached}"
        for host, port, proto in allowed:
            assert seen[f"{host}:{port}/{proto}"] == "open", (namespace, seen)

    # The controller side still works: the host reaches the agents and both VIPs.
    from_host = _probe_here([(amp_a, AGENT_PORT), (amp_b, AGENT_PORT), (lb_a.vip, 80),
                             (lb_b.vip, 80)])
    assert set(from_host.values()) == {"open"}, from_host


def _host_mgmt_address(bed: Testbed) -> str:
    for link in bed.ip.json("addr", "show", "dev", bed.mgmt_bridge):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                return str(info["local"])
    raise AssertionError(f"no IPv4 address on {bed.mgmt_bridge}")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _probe_here(targets: list[tuple[str, int]]) -> dict[str, str]:
    out = {}
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=TIMEOUT).close()
            out[f"{host}:{port}"] = "open"
        except OSError as exc:
            out[f"{host}:{port}"] = repr(exc)
    return out
