"""Housekeeping on real amphorae: a spare amphora is built ahead and taken by a create, and
the pool refills; amphora server certificates are rotated (short validity, short buffer)
while the load balancer keeps serving, and the agent presents the new certificate."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from bench.testbed import MEMBER_PORT, Testbed
from cryptography import x509

from tests.e2e.conftest import open_testbed

pytestmark = pytest.mark.slow

# Every certificate is due: 1 h validity is always inside the 2 h buffer, so each
# half-second pass rotates every amphora's certificate again.
CONF = """
[certificates]
cert_validity_time = 3600
[house_keeping]
cert_expiry_buffer = 7200
cert_interval = 0.5
spare_amphora_pool_size = 1
spare_check_interval = 0.5
"""


@pytest.fixture(scope="module")
def hbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    yield from open_testbed(tmp_path_factory, "housekeeping", extra_conf=CONF)


def _amphorae(client: httpx.Client, **params: str) -> list[dict]:
    return [a for a in client.get("/v2/octavia/amphorae", params=params).json()["amphorae"]
            if a["status"] != "DELETED"]


def _wait_for(what: str, fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _agent_serial(bed: Testbed, address: str) -> int:
    pki = bed.workdir / "state" / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "server_ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(pki / "client.pem"))
    with socket.create_connection((address, 9443), timeout=3) as raw, \
            ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_spare_is_taken_by_a_create_and_the_pool_refills(hbed: Testbed) -> None:
    client = hbed.api()
    spare = _wait_for("a spare", lambda: [a for a in _amphorae(client)
                                          if a["status"] == "READY"])[0]
    started = time.monotonic()
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "spare", "vip_subnet_id": hbed.subnet_id(client), "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                    {"address": m.address, "protocol_port": MEMBER_PORT}
                    for m in hbed.members]}}]}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    hbed.wait_lb_active(client, lb["id"])
    print(f"POST to ACTIVE with a spare: {time.monotonic() - started:.2f}s")
    (amp,) = _amphorae(client, loadbalancer_id=lb["id"])
    assert amp["id"] == spare["id"]
    assert httpx.get(f"http://{lb['vip_address']}/", timeout=5).text in ("member0", "member1")
    _wait_for("the pool to refill", lambda: [a for a in _amphorae(client)
                                             if a["status"] == "READY"])


def test_certificates_rotate_without_dropping_traffic(hbed: Testbed) -> None:
    client = hbed.api()
    lb = _wait_for("the load balancer", lambda: [
        x for x in client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]
        if x["name"] == "spare" and x["provisioning_status"] == "ACTIVE"])[0]
    (amp,) = _amphorae(client, loadbalancer_id=lb["id"])
    failures: list[str] = []
    done = threading.Event()
    count = [0]

    def load() -> None:
        with httpx.Client(timeout=5) as http:
            while not done.is_set() and count[0] < 2000:
                try:
                    http.get(f"http://{lb['vip_address']}/").raise_for_status()
                    count[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.005)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        seen = {_agent_serial(hbed, amp["lb_network_ip"])}
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
            seen.add(_agent_serial(hbed, amp["lb_network_ip"]))
    finally:
        done.set()
        loader.join(30)
    assert len(seen) >= 3, "the agent kept presenting the same certificate"
    assert failures == [] and count[0] > 0
    # The controller still reaches the agent with the rotated certificate.
    r = client.put(f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {
        "description": "after rotation"}})
    assert r.status_code == 200, r.text
    hbed.wait_lb_active(client, lb["id"])


def test_amphora_config_update_reaches_the_agent(hbed: Testbed) -> None:
    """PUT /v2/octavia/amphorae/{id}/config renders the agent config and pushes it; the agent
    accepts it (it would answer 400 to an empty or foreign one) and keeps serving."""
    client = hbed.api()
    lb = _wait_for("the load balancer", lambda: [
        x for x in client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]
        if x["name"] == "spare" and x["provisioning_status"] == "ACTIVE"])[0]
    (amp,) = _amphorae(client, loadbalancer_id=lb["id"])
    assert client.put(f"/v2/octavia/amphorae/{amp['id']}/config").status_code == 202

    def outcome() -> str | None:
        with contextlib.closing(sqlite3.connect(hbed.workdir / "state" / "statera.db")) as db:
            row = db.execute("SELECT state, error FROM operation WHERE kind = "
                             "'update_amphora_config' AND target_id = ?", (amp["id"],)).fetchone()
        return None if row is None or row[0] not in ("SUCCEEDED", "FAILED") else \
            f"{row[0]} {row[1] or ''}".strip()

    assert _wait_for("the config push", outcome) == "SUCCEEDED"
    assert httpx.get(f"http://{lb['vip_address']}/", timeout=5).text in ("member0", "member1")
