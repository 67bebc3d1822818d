"""/v2/lbaas/pools"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.pool import PoolCreateBody, PoolUpdateBody, present_pool
from statera.services import pools as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/pools", tags=["pools"])


@router.get("")
def list_pools(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "pools": [select_fields(present_pool(p), fields) for p in page.items],
            "pools_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_pool(
    body: PoolCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    pool = svc.create(d, ctx, body.pool.model_dump(exclude_unset=True))
    return ok({"pool": present_pool(pool)}, 201)


@router.get("/{pool_id}")
def show_pool(
    pool_id: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    pool = svc.get(d, ctx, pool_id)
    fields = parse_fields(query_params(request))
    return ok({"pool": select_fields(present_pool(pool), fields)})


@router.put("/{pool_id}")
def update_pool(
    pool_id: str,
    body: PoolUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    changes = given(body.pool)
    if body.pool.session_persistence is not None:
        changes["session_persistence"] = body.pool.session_persistence.model_dump(
            exclude_unset=True
        )
    pool = svc.update(d, ctx, pool_id, changes)
    return ok({"pool": present_pool(pool)})


@router.delete("/{pool_id}", status_code=204)
def delete_pool(
    pool_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, pool_id)
    return no_content()
