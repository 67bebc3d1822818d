"""/v2/lbaas/l7policies"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.l7policy import (
    L7PolicyCreateBody,
    L7PolicyUpdateBody,
    present_l7policy,
)
from statera.services import l7policies as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/l7policies", tags=["l7policies"])


@router.get("")
def list_l7policies(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "l7policies": [select_fields(present_l7policy(p), fields) for p in page.items],
            "l7policies_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_l7policy(
    body: L7PolicyCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    policy = svc.create(d, ctx, body.l7policy.model_dump(exclude_unset=True))
    return ok({"l7policy": present_l7policy(policy)}, 201)


@router.get("/{l7policy_id}")
def show_l7policy(
    l7policy_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    policy = svc.get(d, ctx, l7policy_id)
    fields = parse_fields(query_params(request))
    return ok({"l7policy": select_fields(present_l7policy(policy), fields)})


@router.put("/{l7policy_id}")
def update_l7policy(
    l7policy_id: str,
    body: L7PolicyUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    policy = svc.update(d, ctx, l7policy_id, given(body.l7policy))
    return ok({"l7policy": present_l7policy(policy)})


@router.delete("/{l7policy_id}", status_code=204)
def delete_l7policy(
    l7policy_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, l7policy_id)
    return no_content()
