"""/v1/secrets: the Barbican-shaped secret store (store, list, metadata, payload, delete).

Answers have Barbican's shapes (``secret_ref`` as an absolute URL, ``content_types``,
``total``/``next``/``previous`` on lists); errors keep Statera's single error shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import context, deps, no_content, ok, query_params, root_url
from statera.db import models as m
from statera.services import secrets as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(prefix="/v1/secrets", tags=["secrets (Barbican subset)"])


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def secret_ref(request: Request, secret_id: str) -> str:
    return f"{root_url(request)}/v1/secrets/{secret_id}"


def present_secret(request: Request, secret: m.Secret) -> dict[str, Any]:
    return {
        "secret_ref": secret_ref(request, secret.id),
        "name": secret.name,
        "status": "ACTIVE",
        "secret_type": secret.secret_type,
        "content_types": {"default": secret.content_type},
        "algorithm": secret.algorithm,
        "bit_length": secret.bit_length,
        "mode": secret.mode,
        "expiration": _when(secret.expiration),
        "created": _when(secret.created_at),
        "updated": _when(secret.updated_at or secret.created_at),
        "creator_id": secret.creator_id,
    }


@router.post("", status_code=201)
def store_secret(request: Request, body: dict[str, Any] = Body(...),
                 ctx: RequestContext = Depends(context),
                 d: Deps = Depends(deps)) -> JSONResponse:
    secret = svc.store(d, ctx, body)
    ref = secret_ref(request, secret.id)
    return JSONResponse({"secret_ref": ref}, status_code=201, headers={"Location": ref})


@router.get("")
def list_secrets(request: Request, ctx: RequestContext = Depends(context),
                 d: Deps = Depends(deps)) -> JSONResponse:
    items, total, limit, offset = svc.list_(d, ctx, query_params(request))
    body: dict[str, Any] = {"secrets": [present_secret(request, s) for s in items],
                            "total": total}
    here = f"{root_url(request)}/v1/secrets"
    if offset + limit < total:
        body["next"] = f"{here}?limit={limit}&offset={offset + limit}"
    if offset > 0:
        body["previous"] = f"{here}?limit={limit}&offset={max(0, offset - limit)}"
    return ok(body)


@router.get("/{secret_id}")
def show_secret(secret_id: str, request: Request, ctx: RequestContext = Depends(context),
                d: Deps = Depends(deps)) -> JSONResponse:
    return ok(present_secret(request, svc.get(d, ctx, secret_id)))


@router.get("/{secret_id}/payload", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}, "text/plain": {}}}})
def secret_payload(secret_id: str, ctx: RequestContext = Depends(context),
                   d: Deps = Depends(deps)) -> Response:
    data, content_type = svc.payload(d, ctx, secret_id)
    media = "text/plain; charset=utf-8" if content_type == svc.TEXT else content_type
    return Response(content=data, media_type=media,
                    headers={"Cache-Control": "no-store"})


@router.delete("/{secret_id}", status_code=204)
def delete_secret(secret_id: str, ctx: RequestContext = Depends(context),
                  d: Deps = Depends(deps)) -> Response:
    svc.delete(d, ctx, secret_id)
    return no_content()
