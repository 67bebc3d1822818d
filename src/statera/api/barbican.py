"""/v1/secrets and /v1/containers: the Barbican-shaped secret store (store, list, metadata,
payload, delete; certificate, generic and rsa containers).

Answers have Barbican's shapes (``secret_ref`` as an absolute URL, ``content_types``,
``total``/``next``/``previous`` on lists); errors keep Statera's single error shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import context, deps, no_content, ok, query_params, root_url
from statera.db import models as m
from statera.services import secret_containers as containers_svc
from statera.services import secrets as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(prefix="/v1/secrets", tags=["secrets (Barbican subset)"])
containers = APIRouter(prefix="/v1/containers", tags=["secrets (Barbican subset)"])


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
    return _created("secret_ref", secret_ref(request, svc.store(d, ctx, body).id))


@router.get("")
def list_secrets(request: Request, ctx: RequestContext = Depends(context),
                 d: Deps = Depends(deps)) -> JSONResponse:
    items, total, limit, offset = svc.list_(d, ctx, query_params(request))
    return ok(_page(request, "secrets", [present_secret(request, s) for s in items], total,
                    limit, offset))


def _created(key: str, ref: str) -> JSONResponse:
    """Barbican's answer to a store: the new object's reference, also as Location."""
    return JSONResponse({key: ref}, status_code=201, headers={"Location": ref})


def _page(request: Request, kind: str, items: list[dict[str, Any]], total: int, limit: int,
          offset: int) -> dict[str, Any]:
    """A Barbican list: the items, the total, and links to the next and previous pages."""
    body: dict[str, Any] = {kind: items, "total": total}
    here = f"{root_url(request)}/v1/{kind}"
    if offset + limit < total:
        body["next"] = f"{here}?limit={limit}&offset={offset + limit}"
    if offset > 0:
        body["previous"] = f"{here}?limit={limit}&offset={max(0, offset - limit)}"
    return body


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


# ---- containers ------------------------------------------------------------------------------


def container_ref(request: Request, container_id: str) -> str:
    return f"{root_url(request)}/v1/containers/{container_id}"


def present_container(request: Request, container: m.SecretContainer) -> dict[str, Any]:
    return {
        "container_ref": container_ref(request, container.id),
        "name": container.name,
        "type": container.type,
        "status": "ACTIVE",
        "secret_refs": [{"name": r.name, "secret_ref": secret_ref(request, r.secret_id)}
                        for r in container.refs],
        "consumers": [],
        "created": _when(container.created_at),
        "updated": _when(container.updated_at or container.created_at),
        "creator_id": container.creator_id,
    }


@containers.post("", status_code=201)
def store_container(request: Request, body: dict[str, Any] = Body(...),
                    ctx: RequestContext = Depends(context),
                    d: Deps = Depends(deps)) -> JSONResponse:
    return _created("container_ref",
                    container_ref(request, containers_svc.store(d, ctx, body).id))


@containers.get("")
def list_containers(request: Request, ctx: RequestContext = Depends(context),
                    d: Deps = Depends(deps)) -> JSONResponse:
    items, total, limit, offset = containers_svc.list_(d, ctx, query_params(request))
    return ok(_page(request, "containers", [present_container(request, c) for c in items],
                    total, limit, offset))


@containers.get("/{container_id}")
def show_container(container_id: str, request: Request, ctx: RequestContext = Depends(context),
                   d: Deps = Depends(deps)) -> JSONResponse:
    return ok(present_container(request, containers_svc.get(d, ctx, container_id)))


@containers.delete("/{container_id}", status_code=204)
def delete_container(container_id: str, ctx: RequestContext = Depends(context),
                     d: Deps = Depends(deps)) -> Response:
    containers_svc.delete(d, ctx, container_id)
    return no_content()


# ---- version discovery -----------------------------------------------------------------------

discovery = APIRouter(tags=["secrets (Barbican subset)"])


@discovery.get("/v1", include_in_schema=False)
@discovery.get("/v1/", include_in_schema=False)
def key_manager_version(request: Request) -> JSONResponse:
    """Barbican's version document, so keystoneauth clients (openstacksdk's key_manager,
    python-barbicanclient) pointed at ``<base>/v1`` find the store."""
    return ok({"version": {
        "id": "v1", "status": "stable", "min_version": "1.0", "max_version": "1.0",
        "links": [{"rel": "self", "href": f"{root_url(request)}/v1/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.key-manager-v1+json"}]}})
