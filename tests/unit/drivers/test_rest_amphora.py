"""The REST amphora driver against httpx.MockTransport: what it sends, how it classifies
failures, how it backs off. Real TLS is in tests/integration/agent."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from statera.cli.amphora_rest import HaproxyRenderer
from statera.domain.errors import StateraError, StepFailed, TemporaryFailure
from statera.domain.model import Amphora, Listener, LoadBalancer, Pool, Vip
from statera.drivers.amphora.rest import (
    AgentTimeouts,
    RenderedConfig,
    RestAmphoraDriver,
    tls_refs,
)
from statera.drivers.certs.local_ca import PkiPaths

AMP = Amphora(id="6b0c2c43-58c1-4a4c-9d0e-6a1d0b0c0a01", status="ALLOCATED",
              lb_network_ip="192.0.2.10")
LB_ID = "2f4b7f3e-0c1d-4e59-8c0b-1b9f3f7a1e02"
LISTENER_ID = "8a0e1f2d-3c4b-4a59-9687-7a6b5c4d3e03"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


Handler = Callable[[httpx.Request], httpx.Response]


def driver(handler: Handler, clock: Clock | None = None, **kw: object) -> RestAmphoraDriver:
    clock = clock or Clock()
    timeouts = kw.pop("timeouts", AgentTimeouts(retries=4, retry_interval=1.0,
                                                max_retry_interval=3.0))
    return RestAmphoraDriver(PkiPaths(Path("/nonexistent")), 9443, timeouts,  # type: ignore[arg-type]
                             httpx.MockTransport(handler), sleep=clock.sleep, clock=clock,
                             **kw)  # type: ignore[arg-type]


def lb(**kw: object) -> LoadBalancer:
    return LoadBalancer(id=LB_ID, project_id="p1", topology="SINGLE",
                        vip=Vip("203.0.113.5", "s", "n", "port"), amphorae=[AMP],
                        **kw)  # type: ignore[arg-type]


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def test_requests_go_to_the_management_ip_with_the_amphora_id_as_tls_name() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"api_version": "1.0"})

    driver(handler).wait_ready(AMP, timeout=5)
    assert str(seen[0].url) == "https://192.0.2.10:9443/"
    assert seen[0].extensions["sni_hostname"] == AMP.id


def test_ipv6_management_address_is_bracketed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"api_version": "1.0"})

    amp6 = Amphora(id=AMP.id, status="ALLOCATED", lb_network_ip="fd00::10")
    driver(handler).wait_ready(amp6, timeout=5)
    assert seen == ["https://[fd00::10]:9443/"]


def test_wait_ready_retries_while_the_agent_boots_then_succeeds() -> None:
    answers = iter([refused, refused, lambda r: httpx.Response(404),
                    lambda r: httpx.Response(200, json={"api_version": "1.0"})])
    clock = Clock()
    driver(lambda r: next(answers)(r), clock).wait_ready(AMP, timeout=60)
    assert clock.sleeps == pytest.approx([0.02, 0.025, 0.03125])


def test_wait_ready_polls_quickly_then_at_a_bounded_interval() -> None:
    clock = Clock()
    with pytest.raises(TemporaryFailure):
        driver(refused, clock).wait_ready(AMP, timeout=3)
    assert clock.sleeps[0] == 0.02
    assert max(clock.sleeps) == 0.25
    assert clock.sleeps == sorted(clock.sleeps)
    assert sum(clock.sleeps) <= 3


def test_wait_ready_gives_up_after_its_timeout_as_temporary() -> None:
    clock = Clock()
    with pytest.raises(TemporaryFailure, match="not up after 10 s"):
        driver(refused, clock).wait_ready(AMP, timeout=10)
    assert clock.now <= 10


def test_wait_ready_refuses_another_api_version() -> None:
    with pytest.raises(StepFailed, match=r"0\.5") as info:
        driver(lambda r: httpx.Response(200, json={"api_version": "0.5"})).wait_ready(AMP, 5)
    assert not isinstance(info.value, TemporaryFailure)


def test_calls_retry_with_capped_backoff_then_fail_temporarily() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"message": "busy", "details": ""})

    clock = Clock()
    with pytest.raises(TemporaryFailure, match="HTTP 503") as info:
        driver(handler, clock).remove_config(lb(), AMP)
    assert len(calls) == 4
    assert clock.sleeps == [1.0, 2.0, 3.0]
    assert info.value.retryable


@pytest.mark.parametrize("error", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ReadError,
                                   httpx.RemoteProtocolError])
def test_transport_errors_are_temporary(error: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    with pytest.raises(TemporaryFailure):
        driver(handler).rotate_certificate(AMP, b"pem")


def test_a_tls_failure_is_permanent_at_once() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        try:
            raise ssl.SSLCertVerificationError(1, "Hostname mismatch")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("tls", request=request) from exc

    with pytest.raises(StepFailed, match="TLS with amphora") as info:
        driver(handler).wait_ready(AMP, timeout=30)
    assert not isinstance(info.value, TemporaryFailure)
    assert len(calls) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 409, 500])
def test_other_answers_are_permanent_and_carry_the_agent_message(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"message": "Invalid request",
                                            "details": "[ALERT] parsing error"})

    with pytest.raises(StepFailed, match="parsing error") as info:
        driver(handler).update_agent_config(AMP, "[DEFAULT]\n")
    assert not isinstance(info.value, TemporaryFailure)
    assert len(calls) == 1


def test_an_amphora_without_management_address_is_a_permanent_failure() -> None:
    amp = Amphora(id=AMP.id, status="BOOTING")
    with pytest.raises(StepFailed, match="no management address"):
        driver(refused).wait_ready(amp, 5)


def test_apply_config_uploads_certificates_then_config_then_reloads() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        return httpx.Response(202 if "certificates" not in request.url.path else 200,
                              json={"message": "OK"})

    rendered = RenderedConfig("global\n", certificates={"abc.pem": "ref-1"},
                              files={"x.crt-list": b"/p/abc.pem\n"})
    d = driver(handler, renderer=lambda lb_, amp: rendered,
               secrets=lambda ref: f"PEM of {ref}".encode())
    d.apply_config(lb(), AMP)
    base = f"/1.0/loadbalancer/{LB_ID}"
    assert seen == [
        ("PUT", f"{base}/certificates/abc.pem", b"PEM of ref-1"),
        ("PUT", f"{base}/certificates/x.crt-list", b"/p/abc.pem\n"),
        ("PUT", f"/1.0/loadbalancer/{AMP.id}/{LB_ID}/haproxy", b"global\n"),
        ("PUT", f"{base}/reload", b""),
    ]


def test_apply_config_without_secret_store_or_renderer_fails_permanently() -> None:
    ok = driver(lambda r: httpx.Response(202))
    with pytest.raises(StepFailed, match="renderer"):
        ok.apply_config(lb(), AMP)
    tls = driver(lambda r: httpx.Response(202),
                 renderer=lambda lb_, amp: RenderedConfig("x", certificates={"a.pem": "r"}))
    with pytest.raises(StepFailed, match="secret store"):
        tls.apply_config(lb(), AMP)


def test_a_render_refusal_is_permanent() -> None:
    def renderer(lb_: LoadBalancer, amp: Amphora) -> RenderedConfig:
        raise StateraError("listener x: a newline in a header")

    with pytest.raises(StepFailed, match="newline"):
        driver(lambda r: httpx.Response(202), renderer=renderer).apply_config(lb(), AMP)


def test_remove_config_is_done_when_the_agent_has_nothing() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        return httpx.Response(404, json={"message": "Not Found"})

    driver(handler).remove_config(lb(), AMP)
    assert calls == [("DELETE", f"/1.0/listeners/{LB_ID}")]


def test_get_stats_maps_frontends_to_listeners_and_zero_when_unknown() -> None:
    rows = [{"name": LISTENER_ID, "bytes_in": 10, "bytes_out": 20, "active_connections": 1,
             "total_connections": 7, "request_errors": 2}]
    other = "0e0e0e0e-0000-4000-8000-000000000000"
    the_lb = lb(listeners=[Listener(LISTENER_ID, "HTTP", 80), Listener(other, "HTTP", 81)])
    stats = driver(lambda r: httpx.Response(200, json=rows)).get_stats(the_lb, AMP)
    assert [(s.listener_id, s.bytes_in, s.total_connections) for s in stats] == [
        (LISTENER_ID, 10, 7), (other, 0, 0)]
    missing = driver(lambda r: httpx.Response(404)).get_stats(the_lb, AMP)
    assert all(s.bytes_in == 0 for s in missing)


def test_rotation_and_agent_config_send_their_bodies() -> None:
    seen: dict[str, bytes] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.content
        return httpx.Response(202, json={"message": "OK"})

    d = driver(handler)
    d.rotate_certificate(AMP, b"KEY+CERT")
    d.update_agent_config(AMP, "[health_manager]\nheartbeat_interval = 3\n")
    assert seen == {"/1.0/certificate": b"KEY+CERT",
                    "/1.0/config": b"[health_manager]\nheartbeat_interval = 3\n"}


def test_plug_calls_do_not_retry_a_missing_mac() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(404, json={"message": "Not Found", "details": "no interface"})

    from statera.wire.agent import PlugVip

    body = PlugVip(subnet_cidr="203.0.113.0/24", mac_address="fa:16:3e:00:00:01")
    with pytest.raises(StepFailed, match="no interface") as info:
        driver(handler).plug_vip(AMP, "203.0.113.5", body)
    assert not isinstance(info.value, TemporaryFailure)
    assert calls[0]["mac_address"] == "fa:16:3e:00:00:01"
    assert len(calls) == 1


def test_each_amphora_gets_its_own_connection_pool() -> None:
    d = driver(lambda r: httpx.Response(200, json={"api_version": "1.0"}))
    other = Amphora(id="7c1d3d54-69d2-4b5d-8e1f-7b2e1c1d1b04", status="ALLOCATED",
                    lb_network_ip=AMP.lb_network_ip)
    assert d._client(AMP) is d._client(AMP)
    assert d._client(AMP) is not d._client(other)


def test_tls_refs_lists_every_reference_once_and_skips_deleted_objects() -> None:
    the_lb = lb(
        listeners=[
            Listener(LISTENER_ID, "TERMINATED_HTTPS", 443, default_tls_container_ref="a",
                     sni_container_refs=["b", "a"], client_ca_tls_container_ref="ca"),
            Listener("0e0e0e0e-0000-4000-8000-000000000000", "TERMINATED_HTTPS", 444,
                     default_tls_container_ref="gone", provisioning_status="PENDING_DELETE"),
        ],
        pools=[Pool("p", "HTTP", "ROUND_ROBIN", tls_certificate_id="c",
                    ca_tls_certificate_id="ca")])
    assert tls_refs(the_lb) == ["a", "b", "ca", "c"]


def test_haproxy_renderer_uses_the_agent_layout() -> None:
    the_lb = lb(listeners=[Listener(LISTENER_ID, "TERMINATED_HTTPS", 443,
                                    default_tls_container_ref="ref-a")])
    rendered = HaproxyRenderer("/srv/agent")(the_lb, AMP)
    assert f"/srv/agent/{LB_ID}/haproxy.sock" in rendered.haproxy_cfg
    assert f"/srv/agent/{LB_ID}/servers-state" in rendered.haproxy_cfg
    assert list(rendered.certificates.values()) == ["ref-a"]
    (name, crt_list), = rendered.files.items()
    assert name == f"{LISTENER_ID}.crt-list"
    cert_name = next(iter(rendered.certificates))
    assert crt_list.decode().strip() == f"/srv/agent/certs/{LB_ID}/{cert_name}"
    assert f"/srv/agent/certs/{LB_ID}/{name}" in rendered.haproxy_cfg
