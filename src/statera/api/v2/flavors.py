"""/v2/lbaas/flavors"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.catalog import FlavorCreateBody, FlavorUpdateBody, present_flavor
from statera.services import catalog as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/flavors", tags=["flavors"])
KIND = svc.FLAVOR


@router.get("")
def list_flavors(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_entries(d, ctx, KIND, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "flavors": [select_fields(present_flavor(f), fields) for f in page.items],
            "flavors_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_flavor(
    body: FlavorCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    flavor = svc.create_entry(d, ctx, KIND, body.flavor.model_dump(exclude_unset=True))
    return ok({"flavor": present_flavor(flavor)}, 201)


@router.get("/{flavor_id}")
def show_flavor(
    flavor_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    fields = parse_fields(query_params(request))
    return ok(
        {"flavor": select_fields(present_flavor(svc.get_entry(d, ctx, KIND, flavor_id)), fields)}
    )


@router.put("/{flavor_id}")
def update_flavor(
    flavor_id: str,
    body: FlavorUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    flavor = svc.update_entry(d, ctx, KIND, flavor_id, given(body.flavor))
    return ok({"flavor": present_flavor(flavor)})


@router.delete("/{flavor_id}", status_code=204)
def delete_flavor(
    flavor_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete_entry(d, ctx, KIND, flavor_id)
    return no_content()
