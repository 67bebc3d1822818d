"""TLS termination end to end, with certificates from Statera's own secret store.

``statera up`` (namespace amphorae, DEBUG logging) on the shared data-plane testbed; the test
makes a CA and three server certificates with ``cryptography``, stores one as PKCS12 and two
as PEM through ``/v1/secrets``, and creates a TERMINATED_HTTPS listener with a default
certificate and two SNI certificates. A client on the host then checks which certificate
HAProxy presents for each server name, and that requests reach the members.

SEC-8 afterwards: no private key of the scenario appears in any log or state file Statera
and its amphorae wrote (the database and its WAL included, the amphorae's certificate files
excepted), in an operation row, nor in the command line of any process; the certificate files
on the amphora side are 0600 in a 0700 directory.
"""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.testbed import MEMBER_PORT, Testbed, missing_requirements

from statera.drivers.netns.amphora_ns import AmphoraNames
from tests import certgen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The data-plane testbed, with ``statera up`` logging at DEBUG (SEC-8 reads its log)."""
    problem = missing_requirements()
    if problem:
        if os.environ.get("CI"):
            raise AssertionError(f"the TLS end-to-end tests {problem} in CI")
        pytest.skip(problem)
    saved = os.environ.get("STATERA_DEFAULT__DEBUG")
    os.environ["STATERA_DEFAULT__DEBUG"] = "true"  # inherited by `statera up`
    try:
        bed = Testbed.start(Path(tmp_path_factory.mktemp("tls")))
    finally:
        if saved is None:
            os.environ.pop("STATERA_DEFAULT__DEBUG", None)
        else:
            os.environ["STATERA_DEFAULT__DEBUG"] = saved
    try:
        yield bed
    finally:
        bed.close()


def _store(client: httpx.Client, name: str, payload: bytes, *, binary: bool) -> str:
    body: dict[str, Any] = {"name": name, "secret_type": "certificate"}
    if binary:
        body.update(payload=base64.b64encode(payload).decode(),
                    payload_content_type="application/octet-stream",
                    payload_content_encoding="base64")
    else:
        body.update(payload=payload.decode(), payload_content_type="text/plain")
    r = client.post("/v1/secrets", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["secret_ref"])


def _handshake(vip: str, server_name: str, ca_file: Path) -> tuple[str, str]:
    """The CN of the certificate HAProxy presents for ``server_name`` (verified against the
    test CA; the host name is checked only when it should match), and the answer to GET /."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = not server_name.startswith("unknown.")
    with socket.create_connection((vip, 443), timeout=3) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        subject = dict(pair[0] for pair in tls.getpeercert()["subject"])  # type: ignore[index]
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
                    .encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return str(subject["commonName"]), answer.decode(errors="replace")


def _eventually_handshake(vip: str, server_name: str, ca_file: Path,
                          bed: Testbed) -> tuple[str, str]:
    deadline = time.monotonic() + 15
    while True:
        try:
            return _handshake(vip, server_name, ca_file)
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no TLS answer on {vip}:443\n{bed.diagnose()}") from None
            time.sleep(0.1)


def _key_lines(*issued: certgen.Issued) -> list[str]:
    """Full 64-character base64 lines of the private keys' PEM: any of them appearing
    anywhere means key material leaked."""
    return [line for i in issued for line in i.key_pem.decode().splitlines()
            if len(line) == 64]


def _state_files(bed: Testbed) -> Iterator[Path]:
    """Every file Statera and its amphorae wrote, but the amphorae's certificate store
    (where the keys belong) and the secret store's key file."""
    for path in bed.workdir.rglob("*"):
        if not path.is_file() or path.name == "secrets.key":
            continue
        if "certs" in path.parts and path.suffix in (".pem", ".crt-list"):
            continue
        yield path


def test_terminated_https_serves_the_certificate_per_sni(tls_bed: Testbed,
                                                         tmp_path: Path) -> None:
    bed = tls_bed
    client = bed.api()
    ca = certgen.make_ca("Statera e2e CA")
    intermediate = certgen.make_ca("Statera e2e intermediate", issuer=ca)
    default = certgen.make_leaf(ca, "default.example.com", ("default.example.com",))
    site_a = certgen.make_leaf(intermediate, "a.example.com", ("a.example.com",))
    site_b = certgen.make_leaf(ca, "b.example.com", ("b.example.com",), rsa_key=True)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)

    default_ref = _store(client, "default", certgen.pem_bundle(default), binary=False)
    a_ref = _store(client, "a", certgen.p12(site_a, intermediate), binary=True)
    # Key first, as some tools write it; referenced by its bare id.
    b_ref = _store(client, "b", certgen.pem_bundle(site_b, key_first=True), binary=False)
    b_id = b_ref.rsplit("/", 1)[-1]

    subnet = bed.subnet_id(client)
    members = [{"address": m.address, "protocol_port": MEMBER_PORT} for m in bed.members]

    def lb_body(**listener: Any) -> dict[str, Any]:
        return {"loadbalancer": {"name": "tls", "vip_subnet_id": subnet, "listeners": [{
            "protocol": "TERMINATED_HTTPS", "protocol_port": 443, **listener,
            "default_pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                             "members": members}}]}}

    # References the API cannot read are refused before anything is built.
    foreign = bed.api(project="someone-else")
    foreign_ref = _store(foreign, "theirs", certgen.pem_bundle(default), binary=False)
    ca_only_ref = _store(client, "ca", ca.cert_pem, binary=False)
    for bad, why in ((foreign_ref, "no such secret"), (ca_only_ref, "holds no private key")):
        r = client.post("/v2/lbaas/loadbalancers", json=lb_body(default_tls_container_ref=bad))
        assert r.status_code == 400, r.text
        assert why in r.json()["faultstring"] and bad in r.json()["faultstring"]
    assert client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"] == []

    r = client.post("/v2/lbaas/loadbalancers", json=lb_body(
        default_tls_container_ref=default_ref, sni_container_refs=[a_ref, b_id]))
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"])
    vip = lb["vip_address"]

    seen = {}
    for name in ("a.example.com", "b.example.com", "default.example.com",
                 "unknown.example.com"):
        cn, answer = _eventually_handshake(vip, name, ca_file, bed)
        assert answer.startswith("HTTP/1.1 200"), answer[:200]
        assert "member" in answer
        seen[name] = cn
    assert seen == {"a.example.com": "a.example.com", "b.example.com": "b.example.com",
                    "default.example.com": "default.example.com",
                    "unknown.example.com": "default.example.com"}

    # SEC-8: the amphora side holds the bundles 0600 in 0700 directories ...
    amphorae = bed.workdir / "state" / "netns" / "amphorae"
    pems = [p for p in amphorae.rglob("*.pem") if "certs" in p.parts
            and p.parent.name == lb["id"]]
    assert len(pems) >= 3, sorted(map(str, amphorae.rglob("*")))
    for pem in pems:
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600, pem
        assert stat.S_IMODE(pem.parent.stat().st_mode) == 0o700, pem.parent
    pushed = b"".join(p.read_bytes() for p in pems)
    leaks = _key_lines(default, site_a, site_b)
    assert all(line.encode() in pushed for line in leaks)  # the keys did get there

    # ... and nothing else does: logs, state files, the database, operations, command lines.
    assert " DEBUG " in bed.log_path.read_text(errors="replace")  # the log is at DEBUG
    found = [f"{path}: {line[:16]}…" for path in _state_files(bed)
             for line in leaks if line.encode() in path.read_bytes()]
    assert found == []
    db_file = bed.workdir / "state" / "statera.db"
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT payload, progress, error FROM operation").fetchall()
    assert rows and not [line for row in rows for line in leaks if line in repr(row)]
    cmdlines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdlines.append((proc / "cmdline").read_bytes())
            except OSError:
                continue
    assert not [line for line in leaks for cmd in cmdlines if line.encode() in cmd]

    # A secret in use stays; after a cascade delete it can go.
    assert client.delete(f"/v1/secrets/{b_id}").status_code == 409
    amps = client.get("/v2/octavia/amphorae",
                      params={"loadbalancer_id": lb["id"]}).json()["amphorae"]
    names = [n for a in amps for n in (a["id"], AmphoraNames(a["id"]).key)]
    assert names
    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code != 404:
        assert time.monotonic() < deadline, bed.log_tail()
        time.sleep(0.1)
    for ref in (default_ref, a_ref, b_ref, ca_only_ref):
        assert client.delete(f"/v1/secrets/{ref.rsplit('/', 1)[-1]}").status_code == 204
    # Nothing of this load balancer's amphorae stays (other tests may run amphorae now).
    assert [item for item in bed.leftovers() if any(n in item for n in names)] == []


def _client_handshake(vip: str, port: int, ca_file: Path, client: Path | None) -> str:
    """GET / over TLS with an optional client certificate; the status line, or the
    error that ended the exchange."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if client is not None:
        ctx.load_cert_chain(str(client))
    try:
        with socket.create_connection((vip, port), timeout=3) as raw, \
                ctx.wrap_socket(raw, server_hostname="secure.example.com") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: secure.example.com\r\n"
                        b"Connection: close\r\n\r\n")
            answer = tls.recv(65536)
    except (ssl.SSLError, ConnectionResetError) as exc:
        return f"refused: {type(exc).__name__}"
    return answer.decode(errors="replace").split("\r\n", 1)[0] or "refused: closed"


def test_client_authentication_and_pool_tls_files(tls_bed: Testbed, tmp_path: Path) -> None:
    """``ca-file`` and ``crl-file`` built from stored CA and CRL secrets: a client with a
    certificate of the CA passes, one without or with a revoked one does not. A
    re-encrypting pool's ``crt``, ``ca-file`` and ``crl-file`` pass ``haproxy -c``."""
    bed = tls_bed
    client = bed.api()
    ca = certgen.make_ca("Statera e2e client CA")
    server = certgen.make_leaf(ca, "secure.example.com", ("secure.example.com",))
    good = certgen.make_leaf(ca, "good-client")
    revoked = certgen.make_leaf(ca, "revoked-client")
    files = {}
    for name, issued in (("good", good), ("revoked", revoked)):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(certgen.pem_bundle(issued))
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)

    server_ref = _store(client, "server", certgen.p12(server, ca), binary=True)
    ca_ref = _store(client, "client-ca", ca.cert_pem, binary=False)
    crl_ref = _store(client, "crl", certgen.make_crl(ca, (revoked.cert.serial_number,)),
                     binary=False)
    pool_cert_ref = _store(client, "pool-client", certgen.pem_bundle(good), binary=False)
    members = [{"address": m.address, "protocol_port": MEMBER_PORT} for m in bed.members]
    r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "name": "mtls", "vip_subnet_id": bed.subnet_id(client), "listeners": [
            {"protocol": "TERMINATED_HTTPS", "protocol_port": 443,
             "default_tls_container_ref": server_ref, "client_authentication": "MANDATORY",
             "client_ca_tls_container_ref": ca_ref, "client_crl_container_ref": crl_ref,
             "default_pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                              "members": members}},
            {"protocol": "HTTP", "protocol_port": 8443, "default_pool": {
                "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                "tls_container_ref": pool_cert_ref, "ca_tls_container_ref": ca_ref,
                "crl_container_ref": crl_ref, "members": members}}]}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    bed.wait_lb_active(client, lb["id"])  # haproxy -c accepted every file
    vip = lb["vip_address"]

    deadline = time.monotonic() + 15
    while (answer := _client_handshake(vip, 443, ca_file, files["good"])) != "HTTP/1.1 200 OK":
        assert time.monotonic() < deadline, f"{answer}\n{bed.diagnose()}"
        time.sleep(0.1)
    assert _client_handshake(vip, 443, ca_file, None).startswith("refused")
    assert _client_handshake(vip, 443, ca_file, files["revoked"]).startswith("refused")

    client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", params={"cascade": "true"})
    deadline = time.monotonic() + 30
    while client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code != 404:
        assert time.monotonic() < deadline, bed.log_tail()
        time.sleep(0.1)
