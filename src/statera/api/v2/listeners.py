"""/v2/lbaas/listeners"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.listener import (
    ListenerCreateBody,
    ListenerUpdateBody,
    present_listener,
)
from statera.services import listeners as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/listeners", tags=["listeners"])


@router.get("")
def list_listeners(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "listeners": [select_fields(present_listener(li), fields) for li in page.items],
            "listeners_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_listener(
    body: ListenerCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    listener = svc.create(d, ctx, body.listener.model_dump(exclude_unset=True))
    return ok({"listener": present_listener(listener)}, 201)


@router.get("/{listener_id}")
def show_listener(
    listener_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    listener = svc.get(d, ctx, listener_id)
    fields = parse_fields(query_params(request))
    return ok({"listener": select_fields(present_listener(listener), fields)})


@router.put("/{listener_id}")
def update_listener(
    listener_id: str,
    body: ListenerUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    listener = svc.update(d, ctx, listener_id, given(body.listener))
    return ok({"listener": present_listener(listener)})


@router.delete("/{listener_id}", status_code=204)
def delete_listener(
    listener_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, listener_id)
    return no_content()


@router.get("/{listener_id}/stats")
def listener_stats(
    listener_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"stats": svc.stats(d, ctx, listener_id)})
