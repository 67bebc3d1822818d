"""The amphora driver that speaks agent API 1.0 over mutual TLS.

The controller connects to an amphora's ``lb_network_ip`` but checks the identity the
certificate carries: the TLS server name (SNI) of every request is the amphora id, and the
certificate must name it (CN/SAN, checked by OpenSSL's host name check) and chain to the
server CA, the only CA trusted. An amphora's certificate therefore only ever passes for that
amphora, and each amphora gets its own connection pool, so a connection verified for one
never carries a request meant for another.

Failures are classified for the flow engine: an agent that does not answer yet (connection
refused or reset, timeouts, 404 while it starts, 502-504) is retried here with backoff a
bounded number of times, then reported as TemporaryFailure; TLS failures and any other
answer are StepFailed, which no retry mends.

Statistics come from ``GET /1.0/loadbalancer/{lb_id}/stats``, a Statera extension of API 1.0
(the frontends' counters from HAProxy's ``show stat``); an agent without it (404) yields zeros.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from pydantic import BaseModel

from statera.domain.errors import StateraError, StepFailed, TemporaryFailure
from statera.domain.model import Amphora, LoadBalancer
from statera.drivers.amphora.base import ListenerStats, VrrpSpec
from statera.drivers.certs.local_ca import PkiPaths
from statera.drivers.network.base import PluggedInterface
from statera.wire.agent import (
    AGENT_PORT,
    API_VERSION,
    PATH_PREFIX,
    FixedIp,
    PlugNetwork,
    PlugVip,
)

LOG = logging.getLogger(__name__)
PENDING_DELETE = "PENDING_DELETE"
_RETRY_STATUS = frozenset({502, 503, 504})
_MAX_CLIENTS = 256


@dataclass(frozen=True)
class AgentTimeouts:
    """Upstream's rest_request_conn_timeout / rest_request_read_timeout, and the retries of
    a call to an amphora that is up (upstream: 15 tries 2 s apart for an active load balancer)."""

    connect: float = 10.0
    read: float = 60.0
    retries: int = 15
    retry_interval: float = 2.0
    max_retry_interval: float = 10.0
    # wait_ready polls an agent that is starting: a namespace amphora's agent answers a few
    # hundred milliseconds after its spawn, so the polls start 20 ms apart and grow by a
    # quarter each time up to 250 ms (a refused connect costs well under a millisecond).
    boot_poll_interval: float = 0.02
    boot_poll_max_interval: float = 0.25
    boot_poll_growth: float = 1.25


@dataclass(frozen=True)
class RenderedConfig:
    """What one amphora gets for one load balancer, rendered by the caller's renderer."""

    haproxy_cfg: str
    certificates: dict[str, str] = field(default_factory=dict)
    """file name -> TLS container reference; the driver fetches each through `secrets`."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Other files stored beside the certificates (crt-lists), by file name."""


class AmphoraRenderer(Protocol):
    """Renders a load balancer for one amphora. Drivers may not import statera.render (the
    layers contract), so the process wiring passes one in; see render_amphora_config in
    statera.cli.amphora_rest."""

    def __call__(self, lb: LoadBalancer, amphora: Amphora) -> RenderedConfig: ...


class VrrpRenderer(Protocol):
    """Renders an amphora's keepalived.conf (statera.cli.amphora_rest wires the renderer)."""

    def __call__(self, lb: LoadBalancer, amphora: Amphora, vrrp: VrrpSpec) -> str: ...


def _no_secret_store(ref: str) -> bytes:
    raise StepFailed("No secret store is configured: cannot fetch a TLS certificate.")


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _tls_reason(error: ssl.SSLError) -> str:
    for attr in ("verify_message", "reason"):
        value = getattr(error, attr, None)
        if value:
            return str(value)
    return str(error) or type(error).__name__


def _agent_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return f"{body.get('message', '')}: {body.get('details', '')}"[:2000]
    return str(body)[:500]


def tls_refs(lb: LoadBalancer) -> list[str]:
    """Every TLS container reference the load balancer's config uses, once each."""
    refs: list[str | None] = []
    for li in lb.listeners:
        if li.provisioning_status != PENDING_DELETE:
            refs += [li.default_tls_container_ref, *li.sni_container_refs,
                     li.client_ca_tls_container_ref, li.client_crl_container_ref]
    for pool in lb.pools:
        if pool.provisioning_status != PENDING_DELETE:
            refs += [pool.tls_certificate_id, pool.ca_tls_certificate_id,
                     pool.crl_container_id]
    return list(dict.fromkeys(r for r in refs if r))


class RestAmphoraDriver:
    def __init__(self, pki: PkiPaths, agent_port: int = AGENT_PORT,
                 timeouts: AgentTimeouts | None = None,
                 transport: httpx.BaseTransport | None = None, *,
                 secrets: Callable[[str], bytes] = _no_secret_store,
                 renderer: AmphoraRenderer | None = None,
                 vrrp_renderer: VrrpRenderer | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pki = pki
        self.agent_port = agent_port
        self.timeouts = timeouts or AgentTimeouts()
        self.secrets = secrets
        self._renderer = renderer
        # The process wiring's renderer may render keepalived.conf too (its ``keepalived``).
        self._vrrp_renderer = vrrp_renderer or getattr(renderer, "keepalived", None)
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._ssl: ssl.SSLContext | None = None
        self._clients: OrderedDict[tuple[str, str], httpx.Client] = OrderedDict()
        self._lock = threading.Lock()

    # ---- connections ----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(self.pki.server_ca_cert))
            ctx.load_cert_chain(str(self.pki.client_cert))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.check_hostname = True
            self._ssl = ctx
        return self._ssl

    def _client(self, amphora: Amphora) -> httpx.Client:
        ip = amphora.lb_network_ip
        if not ip:
            raise StepFailed(f"Amphora {amphora.id} has no management address.")
        key = (amphora.id, ip)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
            host = f"[{ip}]" if ":" in ip else ip
            transport = self._transport or httpx.HTTPTransport(verify=self.ssl_context())
            client = httpx.Client(
                base_url=f"https://{host}:{self.agent_port}", transport=transport,
                timeout=httpx.Timeout(self.timeouts.read, connect=self.timeouts.connect))
            self._clients[key] = client
            while len(self._clients) > _MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                if self._transport is None:
                    old.close()
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), OrderedDict()
        if self._transport is None:
            for client in clients:
                client.close()

    def _call(self, amphora: Amphora, method: str, path: str, *, content: bytes | None = None,
              json_body: BaseModel | None = None,
              ok: Iterable[int] = (200, 202), on_404: str = "retry",
              attempts: int | None = None) -> httpx.Response | None:
        """One agent call, retried while the agent is not reachable. A 404 is retried (an
        agent that is still starting), or means "nothing there" (`on_404="done"`: returns
        None), or is a permanent answer (`on_404="fail"`)."""
        client = self._client(amphora)
        headers = {}
        if json_body is not None:
            content = json_body.model_dump_json().encode()
            headers["Content-Type"] = "application/json"
        expected = frozenset(ok)
        tries = attempts if attempts is not None else max(1, self.timeouts.retries)
        delay = self.timeouts.retry_interval
        why = ""
        for attempt in range(1, tries + 1):
            try:
                response = client.request(method, path, content=content, headers=headers,
                                          extensions={"sni_hostname": amphora.id})
            except httpx.TransportError as exc:
                failure = _tls_failure(exc)
                if failure is not None:
                    raise StepFailed(
                        f"TLS with amphora {amphora.id} failed: "
                        f"{_tls_reason(failure)}") from None
                why = type(exc).__name__
            else:
                if response.status_code in expected:
                    return response
                status = response.status_code
                if status == 404 and on_404 == "done":
                    return None
                if (status == 404 and on_404 == "fail") or (
                        status != 404 and status not in _RETRY_STATUS):
                    raise StepFailed(f"Amphora {amphora.id}: {method} {path} answered "
                                     f"{response.status_code} {_agent_message(response)}")
                why = f"HTTP {response.status_code}"
            LOG.debug("amphora %s: %s %s not answered (%s), attempt %d of %d",
                      amphora.id, method, path, why, attempt, tries)
            if attempt < tries:
                self._sleep(delay)
                delay = min(delay * 2, self.timeouts.max_retry_interval)
        raise TemporaryFailure(f"Amphora {amphora.id} did not answer {method} {path} ({why}).",
                               delay=self.timeouts.retry_interval)

    # ---- AmphoraDriver ----------------------------------------------------------------------

    def wait_ready(self, amphora: Amphora, timeout: float) -> None:
        t = self.timeouts
        deadline = self._clock() + timeout
        delay = t.boot_poll_interval
        while True:
            try:
                response = self._call(amphora, "GET", "/", attempts=1)
            except TemporaryFailure:
                if self._clock() + delay > deadline:
                    raise TemporaryFailure(
                        f"The agent of amphora {amphora.id} is not up after {timeout:.0f} s.",
                        delay=t.retry_interval) from None
                self._sleep(delay)
                delay = min(delay * t.boot_poll_growth, t.boot_poll_max_interval)
                continue
            assert response is not None
            version = response.json().get("api_version")
            if version != API_VERSION:
                raise StepFailed(f"Amphora {amphora.id} speaks agent API {version!r}, "
                                 f"not {API_VERSION}.")
            return

    def apply_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        if self._renderer is None:
            raise StepFailed("No haproxy.cfg renderer is configured for the amphora driver.")
        try:
            rendered = self._renderer(lb, amphora)
        except StepFailed:
            raise
        except StateraError as exc:
            raise StepFailed(exc.text) from None
        certs = f"{PATH_PREFIX}/loadbalancer/{lb.id}/certificates"
        # Certificates first: haproxy -c on the agent opens every file the config names.
        for name, ref in rendered.certificates.items():
            self._call(amphora, "PUT", f"{certs}/{name}", content=self.secrets(ref))
        for name, data in rendered.files.items():
            self._call(amphora, "PUT", f"{certs}/{name}", content=data)
        self._call(amphora, "PUT", f"{PATH_PREFIX}/loadbalancer/{amphora.id}/{lb.id}/haproxy",
                   content=rendered.haproxy_cfg.encode())
        self._call(amphora, "PUT", f"{PATH_PREFIX}/loadbalancer/{lb.id}/reload")

    def remove_config(self, lb: LoadBalancer, amphora: Amphora) -> None:
        self._call(amphora, "DELETE", f"{PATH_PREFIX}/listeners/{lb.id}", on_404="done")

    def rotate_certificate(self, amphora: Amphora, server_pem: bytes) -> None:
        self._call(amphora, "PUT", f"{PATH_PREFIX}/certificate", content=server_pem)

    def update_agent_config(self, amphora: Amphora, agent_config: str) -> None:
        self._call(amphora, "PUT", f"{PATH_PREFIX}/config", content=agent_config.encode())

    def get_stats(self, lb: LoadBalancer, amphora: Amphora) -> list[ListenerStats]:
        response = self._call(amphora, "GET", f"{PATH_PREFIX}/loadbalancer/{lb.id}/stats",
                              ok=(200,), on_404="done", attempts=2)
        rows = {}
        if response is not None:
            rows = {str(r.get("name")): r for r in response.json() if isinstance(r, dict)}
        out = []
        for li in lb.listeners:
            r = rows.get(li.id, {})
            out.append(ListenerStats(
                listener_id=li.id, bytes_in=int(r.get("bytes_in", 0)),
                bytes_out=int(r.get("bytes_out", 0)),
                active_connections=int(r.get("active_connections", 0)),
                total_connections=int(r.get("total_connections", 0)),
                request_errors=int(r.get("request_errors", 0))))
        return out

    # ---- VRRP (ACTIVE_STANDBY) ------------------------------------------------------------

    def get_interface(self, amphora: Amphora, ip_address: str) -> str:
        return self.interface_of(amphora, ip_address)

    def update_vrrp_config(self, lb: LoadBalancer, amphora: Amphora, vrrp: VrrpSpec) -> None:
        if self._vrrp_renderer is None:
            raise StepFailed("No keepalived.conf renderer is configured for the amphora driver.")
        try:
            text = self._vrrp_renderer(lb, amphora, vrrp)
        except StepFailed:
            raise
        except StateraError as exc:
            raise StepFailed(exc.text) from None
        self._call(amphora, "PUT", f"{PATH_PREFIX}/vrrp/upload", content=text.encode(),
                   on_404="fail")

    def start_vrrp(self, amphora: Amphora) -> None:
        self._call(amphora, "PUT", f"{PATH_PREFIX}/vrrp/start", on_404="fail")

    def reload_vrrp(self, amphora: Amphora) -> None:
        self._call(amphora, "PUT", f"{PATH_PREFIX}/vrrp/reload", on_404="fail")

    def stop_vrrp(self, amphora: Amphora) -> None:
        self._call(amphora, "PUT", f"{PATH_PREFIX}/vrrp/stop", on_404="done", attempts=1)

    # ---- plugging (not part of AmphoraDriver: the network driver's business) --------------

    def post_vip_plug(self, lb: LoadBalancer, amphora: Amphora,
                      iface: PluggedInterface) -> None:
        body = PlugVip(subnet_cidr=iface.subnet_cidr, gateway=iface.gateway,
                       mac_address=iface.mac_address, mtu=iface.mtu,
                       vrrp_ip=amphora.vrrp_ip)
        self.plug_vip(amphora, iface.ip_address, body)

    def post_network_plug(self, amphora: Amphora, iface: PluggedInterface) -> None:
        if not iface.ip_address:
            return
        self.plug_network(amphora, PlugNetwork(
            mac_address=iface.mac_address, mtu=iface.mtu,
            fixed_ips=[FixedIp(ip_address=iface.ip_address, subnet_cidr=iface.subnet_cidr,
                               gateway=None)]))

    def plug_vip(self, amphora: Amphora, vip: str, body: PlugVip) -> None:
        self._call(amphora, "POST", f"{PATH_PREFIX}/plug/vip/{vip}", json_body=body,
                   on_404="fail")

    def plug_network(self, amphora: Amphora, body: PlugNetwork) -> None:
        self._call(amphora, "POST", f"{PATH_PREFIX}/plug/network", json_body=body,
                   on_404="fail")

    def interface_of(self, amphora: Amphora, ip: str) -> str:
        response = self._call(amphora, "GET", f"{PATH_PREFIX}/interface/{ip}", ok=(200,),
                              on_404="fail")
        assert response is not None
        return str(response.json()["interface"])
