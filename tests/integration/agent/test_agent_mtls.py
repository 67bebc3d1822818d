"""The real agent over mutual TLS: who may talk to it (SEC-3), whom the controller accepts
(SEC-4), config upload and reload under load, certificate rotation, and secrets hygiene
(SEC-8). Plugging interfaces is in test_agent_netplug.py."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from statera.domain.errors import StepFailed, TemporaryFailure
from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.rest import RenderedConfig, RestAmphoraDriver
from statera.drivers.certs.local_ca import Pki, cert_pem, init_pki, issue_leaf, key_pem
from statera.wire.agent import AgentConfigFile, render_agent_config
from tests.integration.agent.conftest import RunningAgent, haproxy_cfg

MakeDriver = Callable[..., RestAmphoraDriver]

LB_ID = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a01"


def amphora(agent: RunningAgent, amp_id: str | None = None) -> Amphora:
    return Amphora(id=amp_id or agent.amphora_id, status="ALLOCATED",
                   lb_network_ip="127.0.0.1")


def the_lb(agent: RunningAgent) -> LoadBalancer:
    return LoadBalancer(id=LB_ID, project_id="p1", topology="SINGLE",
                        amphorae=[amphora(agent)])


def routes(amp: str) -> list[tuple[str, str]]:
    lb, cert = LB_ID, f"/1.0/loadbalancer/{LB_ID}/certificates/x.pem"
    return [("GET", "/"), ("GET", "/1.0/info"), ("GET", "/1.0/details"),
            ("PUT", f"/1.0/loadbalancer/{amp}/{lb}/haproxy"),
            ("GET", f"/1.0/loadbalancer/{lb}/haproxy"), ("PUT", f"/1.0/loadbalancer/{lb}/start"),
            ("PUT", f"/1.0/loadbalancer/{lb}/reload"), ("PUT", f"/1.0/loadbalancer/{lb}/stop"),
            ("GET", f"/1.0/loadbalancer/{lb}/stats"), ("GET", "/1.0/listeners"),
            ("DELETE", f"/1.0/listeners/{lb}"), ("PUT", cert), ("GET", cert),
            ("DELETE", cert), ("PUT", "/1.0/certificate"),
            ("POST", "/1.0/plug/vip/203.0.113.5"), ("POST", "/1.0/plug/network"),
            ("GET", "/1.0/interface/127.0.0.1"), ("PUT", "/1.0/config"),
            ("GET", "/1.0/no-such-route")]


def _client_context(pki: Pki, cert_file: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.paths.server_ca_cert))
    if cert_file is not None:
        ctx.load_cert_chain(str(cert_file))
    return ctx


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def bad_clients(pki: Pki, tmp: Path) -> dict[str, ssl.SSLContext]:
    other = init_pki(tmp / "other-pki")
    own_server_pem, _ = pki.issue_server_cert(str(uuid.uuid4()))
    ca_key = serialization.load_pem_private_key(pki.paths.client_ca_key.read_bytes(), None)
    ca = x509.load_pem_x509_certificate(pki.client_ca_pem())
    key, expired = issue_leaf(ca_key, ca, "statera-controller", server=False,  # type: ignore[arg-type]
                              validity=timedelta(days=1),
                              not_before=datetime.now(UTC) - timedelta(days=10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_tls = _client_context(pki, pki.paths.client_cert)
        old_tls.minimum_version = ssl.TLSVersion.TLSv1
        old_tls.maximum_version = ssl.TLSVersion.TLSv1_1
        old_tls.set_ciphers("DEFAULT:@SECLEVEL=0")
    return {
        "no client certificate": _client_context(pki, None),
        "a certificate from another CA": _client_context(pki, other.paths.client_cert),
        "an amphora's server certificate": _client_context(
            pki, _write(tmp / "amp.pem", own_server_pem)),
        "an expired client certificate": _client_context(
            pki, _write(tmp / "expired.pem", cert_pem(expired) + key_pem(key))),
        "TLS 1.1 at most": old_tls,
    }


def test_sec3_every_route_refuses_every_bad_client(
        start_agent: Callable[..., RunningAgent], pki: Pki, tmp_path: Path) -> None:
    agent = start_agent()
    body = haproxy_cfg("127.0.0.1:1", "x").encode()
    base = f"https://127.0.0.1:{agent.port}"
    ext = {"sni_hostname": agent.amphora_id}
    refusals = 0
    for label, ctx in bad_clients(pki, tmp_path).items():
        with httpx.Client(verify=ctx, base_url=base, timeout=5) as client:
            for method, path in routes(agent.amphora_id):
                with pytest.raises(httpx.TransportError):
                    client.request(method, path, content=body, extensions=ext)
                    pytest.fail(f"{label}: {method} {path} got an HTTP answer")
                refusals += 1
    assert refusals == 5 * len(routes(agent.amphora_id))
    # The good client, on the same agent, after all that: answered, and nothing changed.
    good = _client_context(pki, pki.paths.client_cert)
    with httpx.Client(verify=good, base_url=base, timeout=5) as client:
        assert client.get("/", extensions=ext).json() == {"api_version": "1.0"}
        assert client.get("/1.0/listeners", extensions=ext).json() == []
    assert not agent.base.exists() or not any(agent.base.iterdir())
    print(f"\nSEC-3: {refusals} requests by 5 kinds of bad client on "
          f"{len(routes(agent.amphora_id))} routes, all refused at the TLS layer")


def test_sec3_tls_1_1_is_refused_by_the_server_itself(
        start_agent: Callable[..., RunningAgent], pki: Pki) -> None:
    """The client side of OpenSSL is willing to speak TLS 1.1 here; the agent is not."""
    agent = start_agent()

    def s_client(version: str) -> tuple[int, str]:
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{agent.port}", version,
             "-cipher", "DEFAULT:@SECLEVEL=0", "-cert", str(pki.paths.client_cert),
             "-CAfile", str(pki.paths.server_ca_cert), "-servername", agent.amphora_id],
            input=b"", capture_output=True, timeout=20, check=False)
        return out.returncode, (out.stdout + out.stderr).decode(errors="replace")

    code, text = s_client("-tls1_2")                          # control: same client, TLS 1.2
    assert "Cipher is ECDHE" in text, text
    for version in ("-tls1_1", "-tls1"):
        code, text = s_client(version)
        assert code != 0
        assert "Cipher is (NONE)" in text, text               # no session was established
        # The server answers the hello with a protocol_version alert (70) and nothing else.
        assert ("alert protocol version" in text or "SSL alert number 70" in text
                or "SSL handshake has read 0 bytes" in text), text
        assert "Server certificate" not in text, text


def test_sec4_the_controller_refuses_another_amphoras_certificate(
        start_agent: Callable[..., RunningAgent], pki: Pki, tmp_path: Path,
        make_driver: MakeDriver) -> None:
    agent_a = start_agent()
    driver = make_driver(agent_a)
    driver.wait_ready(amphora(agent_a), timeout=10)          # the right one: accepted
    expected_b = amphora(agent_a, str(uuid.uuid4()))
    with pytest.raises(StepFailed, match="TLS with amphora") as info:
        driver.wait_ready(expected_b, timeout=10)
    assert not isinstance(info.value, TemporaryFailure)
    assert "mismatch" in str(info.value).lower() or "not valid" in str(info.value).lower()

    # A certificate naming the right amphora, but from a CA the controller does not trust.
    other = init_pki(tmp_path / "rogue")
    forged_id = str(uuid.uuid4())
    rogue = start_agent(server_pem=other.issue_server_cert(forged_id)[0],
                        amphora_id=forged_id)
    with pytest.raises(StepFailed, match="TLS with amphora"):
        make_driver(rogue).wait_ready(amphora(rogue), timeout=10)


def test_the_driver_retries_an_agent_that_is_not_up_yet(pki: Pki) -> None:
    from statera.drivers.amphora.rest import AgentTimeouts
    from tests.integration.agent.conftest import free_port

    nobody = Amphora(id=str(uuid.uuid4()), status="BOOTING", lb_network_ip="127.0.0.1")
    driver = RestAmphoraDriver(pki.paths, free_port(), AgentTimeouts(retry_interval=0.2))
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match="not up after"):
        driver.wait_ready(nobody, timeout=1)
    assert time.monotonic() - started < 3
    driver.close()


def renderer_of(cfg: dict[str, str]) -> Callable[[LoadBalancer, Amphora], RenderedConfig]:
    def render(lb: LoadBalancer, amp: Amphora) -> RenderedConfig:
        return RenderedConfig(cfg["text"])
    return render


def ns_curl(ns: str, url: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3", url],
                          capture_output=True, text=True, timeout=10, check=False).stdout


def test_invalid_config_is_refused_and_the_old_one_keeps_serving(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent], pki: Pki,
        make_driver: MakeDriver) -> None:
    ns = netns()
    agent = start_agent(namespace=ns)
    cfg = {"text": haproxy_cfg("127.0.0.1:8080", "first")}
    driver = make_driver(agent, renderer_of(cfg))
    driver.apply_config(the_lb(agent), amphora(agent))
    assert ns_curl(ns, "http://127.0.0.1:8080/") == "first"

    cfg["text"] = haproxy_cfg("127.0.0.1:8080", "second") + "    bogus-directive on\n"
    with pytest.raises(StepFailed, match="400") as info:
        driver.apply_config(the_lb(agent), amphora(agent))
    assert "bogus-directive" in str(info.value)
    assert not isinstance(info.value, TemporaryFailure)
    assert ns_curl(ns, "http://127.0.0.1:8080/") == "first"
    stored = (agent.base / LB_ID / "haproxy.cfg").read_text()
    assert "first" in stored and "bogus" not in stored

    driver.remove_config(the_lb(agent), amphora(agent))
    driver.remove_config(the_lb(agent), amphora(agent))       # idempotent
    assert ns_curl(ns, "http://127.0.0.1:8080/") == ""
    assert not (agent.base / LB_ID).exists()


LOADGEN = r"""
import http.client, json, os, sys, threading, time
port, stop = int(sys.argv[1]), sys.argv[2]
res = {"ok": 0, "failed": 0, "errors": [], "keepalive_reopened": 0, "bodies": []}
lock = threading.Lock()

def record(ok, err=None, body=None):
    with lock:
        if ok:
            res["ok"] += 1
        else:
            res["failed"] += 1
            res["errors"].append(err)
        if body is not None and (not res["bodies"] or res["bodies"][-1] != body):
            res["bodies"].append(body)

def new_connections():
    while not os.path.exists(stop):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/", headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read().decode()
            c.close()
            record(r.status == 200, f"status {r.status}", body)
        except Exception as e:
            record(False, repr(e))
        time.sleep(0.002)

def keep_alive():
    c = None
    while not os.path.exists(stop):
        reused = c is not None
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read().decode()
            record(r.status == 200, f"status {r.status}", body)
            if r.will_close:
                c.close()
                c = None
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
            c.close()
            c = None
            if reused:
                # The server closed an idle keep-alive connection as the request went out
                # (an old worker stopping): any HTTP client sends it again on a new one.
                with lock:
                    res["keepalive_reopened"] += 1
                continue
            record(False, repr(e))
        except Exception as e:
            c.close()
            c = None
            record(False, repr(e))
        time.sleep(0.002)

threads = [threading.Thread(target=f) for f in (new_connections, new_connections, keep_alive)]
for t in threads:
    t.start()
for t in threads:
    t.join()
res["errors"] = res["errors"][:20]
print(json.dumps(res))
"""


def _rss_kb(pid: int) -> tuple[int, int]:
    info = psutil.Process(pid).memory_full_info()
    return info.rss // 1024, info.uss // 1024


def test_twenty_reloads_under_load_drop_nothing(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent], pki: Pki,
        tmp_path: Path,
        make_driver: MakeDriver) -> None:
    ns = netns()
    agent = start_agent(namespace=ns)
    agent_rss_start = _rss_kb(agent.pid)
    cfg = {"text": haproxy_cfg("127.0.0.1:8080", "v0")}
    driver = make_driver(agent, renderer_of(cfg))
    lb, amp = the_lb(agent), amphora(agent)
    driver.apply_config(lb, amp)

    stop = tmp_path / "stop-load"
    load = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LOADGEN, "8080",
                             str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        took = []
        for i in range(1, 21):
            cfg["text"] = haproxy_cfg("127.0.0.1:8080", f"v{i}")
            started = time.monotonic()
            driver.apply_config(lb, amp)
            took.append(time.monotonic() - started)
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.touch()
        out, _ = load.communicate(timeout=30)
    result = json.loads(out)
    print(f"\nreloads under load: {result['ok']} requests ok, {result['failed']} failed, "
          f"{result['keepalive_reopened']} idle keep-alive connections closed by a stopping "
          f"worker and reopened; apply_config (upload + haproxy -c + reload) p50 "
          f"{sorted(took)[10] * 1000:.0f} ms, max {max(took) * 1000:.0f} ms")
    assert result["failed"] == 0, result["errors"]
    assert result["ok"] > 200
    assert result["bodies"][-1] == "v20"
    assert len(result["bodies"]) >= 15   # the load saw most of the versions go by

    agent_rss, agent_uss = _rss_kb(agent.pid)
    haproxies = agent.haproxy_pids()
    time.sleep(0.5)  # old workers finish their last connections
    haproxies = [p for p in agent.haproxy_pids() if psutil.pid_exists(p)]
    hap = [_rss_kb(p) for p in haproxies]
    print(f"RSS: agent {agent_rss_start[0] / 1024:.1f} MB after start "
          f"(USS {agent_rss_start[1] / 1024:.1f} MB), {agent_rss / 1024:.1f} MB after 21 "
          f"applies (USS {agent_uss / 1024:.1f} MB); haproxy master+workers "
          f"{sum(r for r, _ in hap) / 1024:.1f} MB RSS, "
          f"{sum(u for _, u in hap) / 1024:.1f} MB USS over {len(hap)} processes")
    assert agent_rss < 150 * 1024


def test_certificate_rotation_is_live_and_keeps_open_connections(
        start_agent: Callable[..., RunningAgent], pki: Pki,
        make_driver: MakeDriver) -> None:
    agent = start_agent()
    amp = amphora(agent)
    ctx = ssl.create_default_context(cafile=str(pki.paths.server_ca_cert))
    ctx.load_cert_chain(str(pki.paths.client_cert))

    def served_serial() -> int:
        with socket.create_connection(("127.0.0.1", agent.port)) as raw, \
                ctx.wrap_socket(raw, server_hostname=agent.amphora_id) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    before = served_serial()
    open_client = httpx.Client(verify=ctx, base_url=f"https://127.0.0.1:{agent.port}")
    ext = {"sni_hostname": agent.amphora_id}
    assert open_client.get("/", extensions=ext).status_code == 200
    new_pem, _ = pki.issue_server_cert(agent.amphora_id)
    make_driver(agent).rotate_certificate(amp, new_pem)
    after = served_serial()
    assert after != before
    assert after == x509.load_pem_x509_certificate(new_pem).serial_number
    assert open_client.get("/1.0/info", extensions=ext).status_code == 200  # same connection
    open_client.close()
    assert agent.process.poll() is None                                      # no restart
    make_driver(agent).wait_ready(amp, timeout=5)


def _secrets_in(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


def _key_bodies(pem: bytes) -> list[str]:
    """Distinctive pieces of every private key in a PEM: its base64 lines."""
    out, inside = [], False
    for line in pem.decode().splitlines():
        if "PRIVATE KEY-----" in line:
            inside = "BEGIN" in line
            continue
        if inside and len(line) > 20:
            out.append(line)
    return out


def test_sec8_no_key_material_in_logs_cmdlines_or_answers(
        netns: Callable[[], str], start_agent: Callable[..., RunningAgent], pki: Pki,
        caplog: pytest.LogCaptureFixture,
        make_driver: MakeDriver) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    ns = netns()
    agent = start_agent(namespace=ns)
    amp = amphora(agent)
    tenant_pem, _ = pki.issue_server_cert("www.example.com")
    cfg = {"text": haproxy_cfg("127.0.0.1:8080", "ok")}

    def render(lb: LoadBalancer, a: Amphora) -> RenderedConfig:
        return RenderedConfig(cfg["text"], certificates={"tls1.pem": "ref-1"})

    driver = make_driver(agent, render, secrets=lambda ref: tenant_pem)
    driver.apply_config(the_lb(agent), amp)
    rotated_pem, _ = pki.issue_server_cert(agent.amphora_id)
    server_pem = Path(agent.config.server_cert).read_bytes()
    driver.rotate_certificate(amp, rotated_pem)
    new_conf = AgentConfigFile(**{**agent.config.__dict__, "heartbeat_interval": 2})
    driver.update_agent_config(amp, render_agent_config(new_conf))
    cfg["text"] = cfg["text"] + "    bogus-directive on\n"
    with pytest.raises(StepFailed) as failed:
        driver.apply_config(the_lb(agent), amp)
    stats = driver.get_stats(the_lb(agent), amp)
    assert stats == []

    secrets = {"heartbeat key": pki.heartbeat_key().hex(), "PEM marker": "PRIVATE KEY"}
    for name, pem in (("server key", server_pem), ("rotated key", rotated_pem),
                      ("tenant key", tenant_pem),
                      ("client key", pki.paths.client_cert.read_bytes()),
                      ("server CA key", pki.paths.server_ca_key.read_bytes()),
                      ("client CA key", pki.paths.client_ca_key.read_bytes())):
        for i, line in enumerate(_key_bodies(pem)):
            secrets[f"{name} line {i}"] = line
    assert len(secrets) > 10

    agent_log = agent.log.read_text()
    assert "DEBUG" in agent_log                                  # it did log at DEBUG
    assert _secrets_in(agent_log, secrets) == []
    assert _secrets_in(caplog.text, secrets) == []
    assert _secrets_in(str(failed.value), secrets) == []
    for pid in [agent.pid, *agent.haproxy_pids()]:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert _secrets_in(cmdline, secrets) == [], pid

    def mode(p: Path) -> int:
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(Path(agent.config.server_cert)) == 0o600
    assert mode(agent.base / "certs" / LB_ID / "tls1.pem") == 0o600
    assert mode(agent.config_path) == 0o600
    for p in (pki.paths.server_ca_key, pki.paths.client_ca_key, pki.paths.client_cert,
              pki.paths.heartbeat_key):
        assert mode(p) == 0o600, p
