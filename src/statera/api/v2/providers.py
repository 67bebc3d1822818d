"""/v2/lbaas/providers"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from statera.api.common import context, deps, ok, query_params
from statera.services import catalog as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/providers", tags=["providers"])


@router.get("")
def list_providers(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    fields = parse_fields(params)
    return ok({"providers": [select_fields(p, fields) for p in svc.list_providers(d, ctx, params)]})


@router.get("/{provider}/flavor_capabilities")
def flavor_capabilities(
    provider: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    fields = parse_fields(params)
    caps = svc.list_capabilities(d, ctx, provider, "flavor", params)
    return ok({"flavor_capabilities": [select_fields(c, fields) for c in caps]})


@router.get("/{provider}/availability_zone_capabilities")
def availability_zone_capabilities(
    provider: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    fields = parse_fields(params)
    caps = svc.list_capabilities(d, ctx, provider, "availability_zone", params)
    return ok({"availability_zone_capabilities": [select_fields(c, fields) for c in caps]})
