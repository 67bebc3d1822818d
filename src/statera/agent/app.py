"""The agent's HTTP API (amphora agent API 1.0): routes, and errors as answers.

TLS and client certificates are the server's business (server.py, main.py): by the time a
request reaches a route, its client has shown a certificate from the client CA. Each
connection has its own thread, so routes simply block (haproxy, ip, fsync). Every error
becomes ``{"message", "details"}`` in one place, ``App.__call__``: AgentError with its
status, an unknown path 404, a known path with another method 405, and anything unexpected
500 (logged, never shown).
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from statera.agent import system
from statera.agent.bodies import PlugNetwork, PlugVip, parse_body, parse_ip
from statera.agent.certs import CertStore, check_server_pem, install_server_pem
from statera.agent.config import AgentConfig, ConfigHolder
from statera.agent.errors import AgentError, BadRequest
from statera.agent.files import md5_hex
from statera.agent.haproxy import MAX_CONFIG_BYTES, HaproxyManager
from statera.agent.keepalived import MAX_CONFIG_BYTES as KEEPALIVED_MAX_CONFIG_BYTES
from statera.agent.keepalived import KeepalivedManager
from statera.agent.netplug import NetPlug
from statera.agent.server import BodyTooLarge, HttpError, Request, Response, unquote
from statera.wire.agent_core import API_VERSION, PATH_PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

LOG = logging.getLogger(__name__)
ACTIONS = ("start", "stop", "reload")
MAX_SMALL_BODY = 1024 * 1024


@dataclass
class Agent:
    """Everything the routes act on."""

    conf: ConfigHolder
    haproxy: HaproxyManager
    net: NetPlug
    certs: CertStore
    # Called with the new server PEM's path once it is in place (main.py swaps a new TLS
    # context in for new connections), and with the new config after PUT /config.
    on_certificate: Callable[[Path], None] | None = None
    on_config: Callable[[AgentConfig], None] | None = None
    vrrp: KeepalivedManager | None = None

    @property
    def config(self) -> AgentConfig:
        return self.conf.config


def build_agent(conf: AgentConfig | ConfigHolder, **hooks: Any) -> Agent:
    holder = conf if isinstance(conf, ConfigHolder) else ConfigHolder(conf)
    c = holder.config
    base = Path(c.base_path)
    return Agent(conf=holder,
                 haproxy=HaproxyManager(base, c.haproxy_cmd, c.haproxy_namespace),
                 net=NetPlug(c.haproxy_namespace, c.topology),
                 certs=CertStore(base),
                 vrrp=KeepalivedManager(base, c.haproxy_namespace), **hooks)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> Response:
    return Response(status, json.dumps(data).encode(), headers=headers or {})


def message(message: str, details: str = "", status: int = 202,
            headers: dict[str, str] | None = None) -> Response:
    return json_response({"message": message, "details": details}, status, headers)


def _ok(details: str = "", status: int = 202, headers: dict[str, str] | None = None,
        ) -> Response:
    return message("OK", details, status, headers)


def _body(request: Request, limit: int = MAX_SMALL_BODY) -> bytes:
    try:
        return request.body(limit)
    except BodyTooLarge:
        raise BadRequest("Invalid request", "the body is too large") from None


def _json_body(request: Request) -> Any:
    try:
        return json.loads(_body(request))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest("Invalid request", "the body is not valid JSON") from None


Route = tuple[str, tuple[str, ...], "Callable[..., Response]"]


class MethodNotAllowed(AgentError):
    status = 405

    def __init__(self, allowed: list[str]) -> None:
        super().__init__("Method Not Allowed")
        self.allowed = allowed


class App:
    """The routes of API 1.0 for one agent; ``app(request) -> Response``."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.routes: list[Route] = []
        p = PATH_PREFIX
        lb = f"{p}/loadbalancer/{{lb_id}}"
        cert = f"{lb}/certificates/{{filename}}"
        for method, path, handler in (
                ("GET", "/", self.version),
                ("GET", f"{p}/info", self.get_info),
                ("GET", f"{p}/details", self.get_details),
                ("PUT", f"{p}/loadbalancer/{{amphora_id}}/{{lb_id}}/haproxy", self.put_haproxy),
                ("GET", f"{lb}/haproxy", self.get_haproxy),
                ("GET", f"{lb}/stats", self.get_stats),
                ("PUT", f"{lb}/{{action}}", self.put_action),
                ("GET", f"{p}/listeners", self.get_listeners),
                ("DELETE", f"{p}/listeners/{{lb_id}}", self.delete_listeners),
                ("PUT", cert, self.put_certificate),
                ("GET", cert, self.get_certificate),
                ("DELETE", cert, self.delete_certificate),
                ("PUT", f"{p}/certificate", self.put_server_certificate),
                ("POST", f"{p}/plug/vip/{{vip}}", self.plug_vip),
                ("POST", f"{p}/plug/network", self.plug_network),
                ("GET", f"{p}/interface/{{ip}}", self.get_interface),
                ("PUT", f"{p}/config", self.put_config),
                ("PUT", f"{p}/vrrp/upload", self.put_vrrp_config),
                ("PUT", f"{p}/vrrp/{{action}}", self.put_vrrp_action)):
            self.routes.append((method, tuple(path.split("/")[1:]), handler))

    # ---- dispatch and errors --------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        try:
            handler, params = self.match(request.method, request.path)
            return handler(request, **params)
        except MethodNotAllowed as exc:
            return message("Method Not Allowed", "", 405, {"Allow": ", ".join(exc.allowed)})
        except AgentError as exc:
            if exc.status >= 500:
                LOG.error("%s %s: %s", request.method, request.path, exc.message)
            return message(exc.message, exc.details, exc.status)
        except HttpError:
            raise  # the server answers it and closes the connection
        except Exception:
            LOG.exception("%s %s failed", request.method, request.path)
            return message("Internal Server Error", "", 500)

    def match(self, method: str, path: str) -> tuple[Callable[..., Response], dict[str, str]]:
        segments = path.split("/")[1:]
        allowed: list[str] = []
        for route_method, pattern, handler in self.routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            if route_method == method:
                return handler, params
            allowed.append(route_method)
        if allowed:
            raise MethodNotAllowed(allowed)
        raise AgentError("Not Found", "", 404)

    # ---- routes ---------------------------------------------------------------------------

    def version(self, request: Request) -> Response:
        return json_response({"api_version": API_VERSION})

    def _info(self) -> dict[str, Any]:
        return {"hostname": socket.gethostname(), "uuid": self.agent.config.amphora_id,
                "haproxy_version": self.agent.haproxy.version(), "api_version": API_VERSION}

    def get_info(self, request: Request) -> Response:
        return json_response(self._info())

    def get_details(self, request: Request) -> Response:
        a = self.agent
        lbs = a.haproxy.lb_ids()
        return json_response({
            **self._info(),
            "haproxy_count": sum(1 for lb in lbs if a.haproxy.running(lb)),
            "cpu": system.cpu(), "memory": system.memory(),
            "disk": system.disk(a.haproxy.base_path), "load": system.load(),
            "topology": a.config.topology, "topology_status": "OK", "listeners": lbs,
            "packages": {}, "networks": a.net.counters(), "lvs_listener_process_count": 0,
            "active_tuned_profiles": ""})

    def put_haproxy(self, request: Request, amphora_id: str, lb_id: str) -> Response:
        if amphora_id.lower() != self.agent.config.amphora_id.lower():
            raise BadRequest("Invalid amphora id", "this is another amphora")
        data = _body(request, MAX_CONFIG_BYTES)
        etag = self.agent.haproxy.write_config(lb_id, data)
        return _ok("Configuration file is valid", headers={"ETag": etag})

    def get_haproxy(self, request: Request, lb_id: str) -> Response:
        data = self.agent.haproxy.read_config(lb_id)
        return Response(200, data, "text/plain; charset=utf-8", {"ETag": md5_hex(data)})

    def get_stats(self, request: Request, lb_id: str) -> Response:
        return json_response([row.as_dict() for row in self.agent.haproxy.stats(lb_id)])

    def put_action(self, request: Request, lb_id: str, action: str) -> Response:
        if action not in ACTIONS:
            raise BadRequest("Invalid Request", f"unknown action {action!r}")
        getattr(self.agent.haproxy, action)(lb_id)
        return _ok(f"haproxy of load balancer {lb_id}: {action} done")

    def get_listeners(self, request: Request) -> Response:
        h = self.agent.haproxy
        return json_response([{"status": "ACTIVE" if h.running(lb) else "STOPPED", "uuid": lb,
                               "type": "HAPROXY"} for lb in h.lb_ids()])

    def delete_listeners(self, request: Request, lb_id: str) -> Response:
        self.agent.haproxy.remove(lb_id)
        self.agent.certs.remove_all(lb_id)
        return _ok(status=200)

    def put_certificate(self, request: Request, lb_id: str, filename: str) -> Response:
        md5 = self.agent.certs.put(lb_id, filename, _body(request))
        return _ok(status=200, headers={"ETag": md5})

    def get_certificate(self, request: Request, lb_id: str, filename: str) -> Response:
        return json_response({"md5sum": self.agent.certs.md5(lb_id, filename)})

    def delete_certificate(self, request: Request, lb_id: str, filename: str) -> Response:
        self.agent.certs.delete(lb_id, filename)
        return _ok(status=200)

    def put_server_certificate(self, request: Request) -> Response:
        data = _body(request)
        path = Path(self.agent.config.server_cert)
        check_server_pem(data, self.agent.config.amphora_id, path.parent)
        install_server_pem(path, data)
        if self.agent.on_certificate is not None:
            self.agent.on_certificate(path)
        LOG.info("server certificate replaced")
        return _ok("new connections use the new certificate")

    def plug_vip(self, request: Request, vip: str) -> Response:
        address = parse_ip(vip, "Invalid VIP")
        body: PlugVip = parse_body(PlugVip, _json_body(request))
        ifname = self.agent.net.plug_vip(address, body)
        return _ok(f"VIP {address} plugged on interface {ifname}")

    def plug_network(self, request: Request) -> Response:
        body: PlugNetwork = parse_body(PlugNetwork, _json_body(request))
        ifname = self.agent.net.plug_network(body)
        return _ok(f"Plugged on interface {ifname}")

    def get_interface(self, request: Request, ip: str) -> Response:
        address = parse_ip(ip, "Invalid IP address")
        return json_response({"interface": self.agent.net.interface_of(address)})

    def put_config(self, request: Request) -> Response:
        text = _body(request).decode("utf-8", "replace")
        new = self.agent.conf.replace(text)
        if self.agent.on_config is not None:
            self.agent.on_config(new)
        return _ok("configuration updated")

    def _keepalived(self) -> KeepalivedManager:
        if self.agent.vrrp is None:
            raise AgentError("Not Found", "this agent does not run keepalived", 404)
        return self.agent.vrrp

    def put_vrrp_config(self, request: Request) -> Response:
        vrrp = self._keepalived()
        etag = vrrp.write_config(_body(request, KEEPALIVED_MAX_CONFIG_BYTES))
        return _ok("keepalived configuration is valid", status=200, headers={"ETag": etag})

    def put_vrrp_action(self, request: Request, action: str) -> Response:
        self._keepalived().do(action)
        return _ok(f"keepalived: {action} done")


def _match(pattern: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for want, have in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            if not have:
                return None
            params[want[1:-1]] = unquote(have)
        elif want != have:
            return None
    return params


def create_app(conf: AgentConfig | ConfigHolder | Agent, **hooks: Any) -> App:
    return App(conf if isinstance(conf, Agent) else build_agent(conf, **hooks))
