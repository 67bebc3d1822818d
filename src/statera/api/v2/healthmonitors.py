"""/v2/lbaas/healthmonitors"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.healthmonitor import (
    HealthMonitorCreateBody,
    HealthMonitorUpdateBody,
    present_healthmonitor,
)
from statera.services import healthmonitors as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/healthmonitors", tags=["healthmonitors"])


@router.get("")
def list_healthmonitors(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "healthmonitors": [
                select_fields(present_healthmonitor(hm), fields) for hm in page.items
            ],
            "healthmonitors_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_healthmonitor(
    body: HealthMonitorCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    hm = svc.create(d, ctx, body.healthmonitor.model_dump(exclude_unset=True))
    return ok({"healthmonitor": present_healthmonitor(hm)}, 201)


@router.get("/{hm_id}")
def show_healthmonitor(
    hm_id: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    hm = svc.get(d, ctx, hm_id)
    fields = parse_fields(query_params(request))
    return ok({"healthmonitor": select_fields(present_healthmonitor(hm), fields)})


@router.put("/{hm_id}")
def update_healthmonitor(
    hm_id: str,
    body: HealthMonitorUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    hm = svc.update(d, ctx, hm_id, given(body.healthmonitor))
    return ok({"healthmonitor": present_healthmonitor(hm)})


@router.delete("/{hm_id}", status_code=204)
def delete_healthmonitor(
    hm_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, hm_id)
    return no_content()
