"""The agent's HTTP API (amphora agent API 1.0), as a FastAPI app.

TLS and client certificates are the server's business (main.py): by the time a request
reaches a route, its client has shown a certificate from the client CA. Blocking work
(haproxy, ip, fsync) runs in the thread pool; errors become ``{"message", "details"}`` in
one place below.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from statera.agent import system
from statera.agent.certs import CertStore, check_server_pem, install_server_pem
from statera.agent.config import AgentConfig, ConfigHolder
from statera.agent.errors import AgentError, BadRequest
from statera.agent.files import md5_hex
from statera.agent.haproxy import MAX_CONFIG_BYTES, HaproxyManager
from statera.agent.netplug import NetPlug
from statera.wire import agent as wire

LOG = logging.getLogger(__name__)
ACTIONS = ("start", "stop", "reload")


@dataclass
class Agent:
    """Everything the routes act on."""

    conf: ConfigHolder
    haproxy: HaproxyManager
    net: NetPlug
    certs: CertStore
    # Called with the new server PEM's path once it is in place (main.py swaps it into the
    # live TLS context), and with the new config after PUT /config.
    on_certificate: Callable[[Path], None] | None = None
    on_config: Callable[[AgentConfig], None] | None = None

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
                 certs=CertStore(base), **hooks)


def _ok(details: str = "", status: int = 202, headers: dict[str, str] | None = None,
        ) -> JSONResponse:
    return JSONResponse({"message": "OK", "details": details}, status_code=status,
                        headers=headers)


async def _body(request: Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise BadRequest("Invalid request", "the body is too large")
    return bytes(data)


def create_app(conf: AgentConfig | ConfigHolder | Agent, **hooks: Any) -> FastAPI:
    agent = conf if isinstance(conf, Agent) else build_agent(conf, **hooks)
    app = FastAPI(title="Statera amphora agent", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.agent = agent
    _errors(app)
    p = wire.PATH_PREFIX

    @app.get("/")
    async def version() -> dict[str, str]:
        return {"api_version": wire.API_VERSION}

    def info() -> wire.Info:
        return wire.Info(hostname=socket.gethostname(), uuid=agent.config.amphora_id,
                         haproxy_version=agent.haproxy.version())

    @app.get(f"{p}/info")
    async def get_info() -> dict[str, Any]:
        return (await run_in_threadpool(info)).model_dump()

    def details() -> wire.Details:
        lbs = agent.haproxy.lb_ids()
        return wire.Details(
            **info().model_dump(),
            haproxy_count=sum(1 for lb in lbs if agent.haproxy.running(lb)),
            cpu=system.cpu(), memory=system.memory(), disk=system.disk(agent.haproxy.base_path),
            load=system.load(), topology=agent.config.topology, topology_status="OK",
            listeners=lbs, networks=agent.net.counters())

    @app.get(f"{p}/details")
    async def get_details() -> dict[str, Any]:
        return (await run_in_threadpool(details)).model_dump()

    @app.put(f"{p}/loadbalancer/{{amphora_id}}/{{lb_id}}/haproxy")
    async def put_haproxy(amphora_id: str, lb_id: str, request: Request) -> Response:
        if amphora_id.lower() != agent.config.amphora_id.lower():
            raise BadRequest("Invalid amphora id", "this is another amphora")
        data = await _body(request, MAX_CONFIG_BYTES)
        etag = await run_in_threadpool(agent.haproxy.write_config, lb_id, data)
        return _ok("Configuration file is valid", headers={"ETag": etag})

    @app.get(f"{p}/loadbalancer/{{lb_id}}/haproxy")
    async def get_haproxy(lb_id: str) -> Response:
        data = await run_in_threadpool(agent.haproxy.read_config, lb_id)
        return Response(data, media_type="text/plain", headers={"ETag": md5_hex(data)})

    @app.get(f"{p}/loadbalancer/{{lb_id}}/stats")
    async def get_stats(lb_id: str) -> list[dict[str, Any]]:
        rows = await run_in_threadpool(agent.haproxy.stats, lb_id)
        return [r.model_dump() for r in rows]

    @app.put(f"{p}/loadbalancer/{{lb_id}}/{{action}}")
    async def put_action(lb_id: str, action: str) -> Response:
        if action not in ACTIONS:
            raise BadRequest("Invalid Request", f"unknown action {action!r}")
        await run_in_threadpool(getattr(agent.haproxy, action), lb_id)
        return _ok(f"haproxy of load balancer {lb_id}: {action} done")

    @app.get(f"{p}/listeners")
    async def get_listeners() -> list[dict[str, Any]]:
        def listing() -> list[dict[str, Any]]:
            return [wire.ListenerEntry(
                        uuid=lb, status="ACTIVE" if agent.haproxy.running(lb) else "STOPPED",
                    ).model_dump() for lb in agent.haproxy.lb_ids()]
        return await run_in_threadpool(listing)

    @app.delete(f"{p}/listeners/{{lb_id}}")
    async def delete_listeners(lb_id: str) -> Response:
        def remove() -> None:
            agent.haproxy.remove(lb_id)
            agent.certs.remove_all(lb_id)
        await run_in_threadpool(remove)
        return _ok(status=200)

    cert_route = f"{p}/loadbalancer/{{lb_id}}/certificates/{{filename}}"

    @app.put(cert_route)
    async def put_certificate(lb_id: str, filename: str, request: Request) -> Response:
        data = await _body(request, 1024 * 1024)
        md5 = await run_in_threadpool(agent.certs.put, lb_id, filename, data)
        return _ok(status=200, headers={"ETag": md5})

    @app.get(cert_route)
    async def get_certificate(lb_id: str, filename: str) -> dict[str, str]:
        return {"md5sum": await run_in_threadpool(agent.certs.md5, lb_id, filename)}

    @app.delete(cert_route)
    async def delete_certificate(lb_id: str, filename: str) -> Response:
        await run_in_threadpool(agent.certs.delete, lb_id, filename)
        return _ok(status=200)

    @app.put(f"{p}/certificate")
    async def put_server_certificate(request: Request) -> Response:
        data = await _body(request, 1024 * 1024)
        path = Path(agent.config.server_cert)
        await run_in_threadpool(check_server_pem, data, agent.config.amphora_id, path.parent)
        await run_in_threadpool(install_server_pem, path, data)
        # On the event loop thread, so the TLS context never changes under a handshake
        # running elsewhere.
        if agent.on_certificate is not None:
            agent.on_certificate(path)
        LOG.info("server certificate replaced")
        return _ok("new connections use the new certificate")

    @app.post(f"{p}/plug/vip/{{vip}}")
    async def plug_vip(vip: str, body: wire.PlugVip) -> Response:
        try:
            vip = str(wire.IpAddressAdapter.validate_python(vip))
        except ValueError:
            raise BadRequest("Invalid VIP", "not an IP address") from None
        ifname = await run_in_threadpool(agent.net.plug_vip, vip, body)
        return _ok(f"VIP {vip} plugged on interface {ifname}")

    @app.post(f"{p}/plug/network")
    async def plug_network(body: wire.PlugNetwork) -> Response:
        ifname = await run_in_threadpool(agent.net.plug_network, body)
        return _ok(f"Plugged on interface {ifname}")

    @app.get(f"{p}/interface/{{ip}}")
    async def get_interface(ip: str) -> dict[str, str]:
        try:
            ip = str(wire.IpAddressAdapter.validate_python(ip))
        except ValueError:
            raise BadRequest("Invalid IP address", "not an IP address") from None
        return {"interface": await run_in_threadpool(agent.net.interface_of, ip)}

    @app.put(f"{p}/config")
    async def put_config(request: Request) -> Response:
        text = (await _body(request, 1024 * 1024)).decode("utf-8", "replace")
        new = await run_in_threadpool(agent.conf.replace, text)
        if agent.on_config is not None:
            agent.on_config(new)
        return _ok("configuration updated")

    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(AgentError)
    async def agent_error(request: Request, exc: AgentError) -> JSONResponse:
        if exc.status >= 500:
            LOG.error("%s %s: %s", request.method, request.url.path, exc.message)
        return JSONResponse({"message": exc.message, "details": exc.details},
                            status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the fields, never echo their values back.
        details = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                            for e in exc.errors())
        return JSONResponse({"message": "Invalid request", "details": details},
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail), "details": ""},
                            status_code=exc.status_code, headers=exc.headers)
