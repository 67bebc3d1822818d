"""Helpers every router uses: the caller's context, the services' dependencies, query
parameters as lists, and links."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from statera.services.context import RequestContext
from statera.services.deps import Deps


def deps(request: Request) -> Deps:
    return request.app.state.deps  # type: ignore[no-any-return]


def context(request: Request) -> RequestContext:
    """The caller, authenticated per [api_settings] auth_strategy (FastAPI dependency)."""
    ctx = getattr(request.state, "ctx", None)
    if ctx is not None:
        return ctx  # type: ignore[no-any-return]
    state = request.app.state
    request_id = request.headers.get("x-openstack-request-id") or f"req-{uuid.uuid4()}"
    request.state.request_id = request_id
    if state.deps.settings.api_settings.auth_strategy == "http_basic":
        ctx = state.basic_auth.authenticate(request.headers.get("authorization"), request_id)
    else:
        from statera.api.auth import noauth_context

        ctx = noauth_context(request, request_id,
                             state.deps.settings.api_settings.noauth_project_id or None)
    request.state.ctx = ctx
    return ctx


def query_params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def base_url(request: Request) -> str:
    api_base = request.app.state.deps.settings.api_settings.api_base_uri
    if api_base:
        return api_base.rstrip("/") + request.url.path
    return str(request.url.replace(query=""))


def root_url(request: Request) -> str:
    api_base = request.app.state.deps.settings.api_settings.api_base_uri
    if api_base:
        return api_base.rstrip("/")
    return str(request.base_url).rstrip("/")


def ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def accepted() -> Response:
    return Response(status_code=202)


def no_content() -> Response:
    return Response(status_code=204)


def cascade_flag(request: Request) -> bool:
    return request.query_params.get("cascade", "false").lower() in ("true", "1", "yes")
