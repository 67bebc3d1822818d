"""The one place where errors become HTTP responses, in Octavia's (WSME) shape:
``{"faultcode": "Client"|"Server", "faultstring": "...", "debuginfo": null}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from statera.domain.errors import NotAuthenticated, StateraError

LOG = logging.getLogger(__name__)


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"faultcode": "Client" if status < 500 else "Server",
                 "faultstring": message, "debuginfo": None},
        headers=headers)


def describe_validation_error(errors: list[dict[str, Any]]) -> str:
    """Turn pydantic's errors into one Octavia-like sentence naming the field."""
    if not errors:
        return "Invalid input."
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
    if loc and loc[0] in ("query", "path"):
        loc = loc[1:]
    # Drop the wrapper key ("loadbalancer", ...) so the attribute reads as upstream's.
    field = ".".join(loc[1:] if len(loc) > 1 else loc) or "body"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"Invalid input for field/attribute {loc[0] if loc else 'body'}. " \
               f"Unknown attribute for argument {loc[0] if loc else 'body'}: {loc[-1]}"
    if kind == "missing":
        return f"Invalid input for field/attribute {field}. Value: 'None'. Mandatory field " \
               "missing."
    if kind in ("json_invalid", "model_attributes_type") and not loc[1:]:
        return "Invalid input: the request body must be a JSON object."
    value = err.get("input")
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else \
        type(value).__name__
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return f"Invalid input for field/attribute {field}. Value: '{shown}'. {msg}"


def install(app: FastAPI) -> None:
    @app.exception_handler(StateraError)
    async def _statera(_req: Request, exc: StateraError) -> JSONResponse:
        headers = None
        if isinstance(exc, NotAuthenticated):
            headers = {"WWW-Authenticate": 'Basic realm="statera"'}
        if exc.status >= 500:
            LOG.warning("%s: %s", type(exc).__name__, exc.text)
        return fault(exc.status, exc.text, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return fault(400, describe_validation_error(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Error."
        if exc.status_code == 404 and message == "Not Found":
            message = "The resource could not be found."
        return fault(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(sa_exc.OperationalError)
    async def _db_down(_req: Request, exc: sa_exc.OperationalError) -> JSONResponse:
        LOG.warning("database error: %s", str(exc).splitlines()[0][:300])
        return fault(503, "The database is unavailable right now; try again shortly.")

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        LOG.exception("unexpected error on %s %s", req.method, req.url.path)
        return fault(500, "An unknown exception occurred.")
