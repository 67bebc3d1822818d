"""create_app(deps): the API as an ASGI app. Nothing here reads global state."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from statera import __version__
from statera.api import errors, versions
from statera.api.auth import BasicAuthenticator
from statera.api.v2 import ROUTERS
from statera.services.deps import Deps


class _Edges:
    """Pure-ASGI middleware for what Octavia does at the edge: JSON only (406 otherwise),
    an optional ``.json`` suffix on paths, and a request id on every response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.endswith(".json") and path.startswith("/v2"):
            scope = dict(scope, path=path[:-5], raw_path=path[:-5].encode())
        headers = dict(scope.get("headers") or [])
        accept = headers.get(b"accept", b"").decode("latin-1").lower()
        # Neither the secret store's payloads nor the Prometheus scrape are JSON.
        if accept and not _accepts_json(accept) and not path.startswith(("/v1/secrets",
                                                                         "/metrics")):
            response = JSONResponse(status_code=406, content={"errors": [{
                "status": 406, "title": "Not Acceptable",
                "detail": "Only application/json is available.",
                "request_id": f"req-{uuid.uuid4()}"}]})
            await response(scope, receive, send)
            return
        request_id = headers.get(b"x-openstack-request-id")

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                rid = request_id or f"req-{uuid.uuid4()}".encode()
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-openstack-request-id", rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";")[0].strip()
        if media in ("application/json", "application/*", "*/*", "*") or media.endswith("+json"):
            return True
    return False


def create_app(deps: Deps) -> FastAPI:
    app = FastAPI(
        title="Statera load-balancer API",
        version=__version__,
        description="The OpenStack Octavia v2 API, served by Statera.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.deps = deps
    app.state.basic_auth = BasicAuthenticator(deps.db)
    errors.install(app)
    app.include_router(versions.router)
    for router in ROUTERS:
        app.include_router(router, prefix="/v2")
        app.include_router(router, prefix="/v2.0", include_in_schema=False)
    from statera.api import neutron

    # The stock CLI asks for networks at the same endpoint, under /v2 or /v2.0.
    app.include_router(neutron.router, prefix="/v2.0")
    app.include_router(neutron.router, prefix="/v2", include_in_schema=False)
    from statera.api import identity

    app.include_router(identity.router)
    app.include_router(identity.router, prefix="/v3")
    from statera.api import barbican

    app.include_router(barbican.router)
    app.include_router(barbican.containers)
    app.include_router(barbican.discovery)
    if deps.settings.api_settings.healthcheck_enabled:
        @app.get("/healthcheck", include_in_schema=False)
        def healthcheck() -> JSONResponse:
            with deps.db.read() as s:
                s.execute(__import__("sqlalchemy").text("SELECT 1"))
            return JSONResponse({"status": "OK"})
    from statera.api import metrics

    metrics.install(app, deps)  # its middleware sits inside _Edges, after path rewriting
    app.add_middleware(_Edges)
    return app
