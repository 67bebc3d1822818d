"""/v2/lbaas/flavorprofiles"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.catalog import (
    FlavorProfileCreateBody,
    FlavorProfileUpdateBody,
    present_flavor_profile,
)
from statera.services import catalog as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/flavorprofiles", tags=["flavor profiles"])
KIND = svc.FLAVOR_PROFILE


@router.get("")
def list_flavor_profiles(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_profiles(d, ctx, KIND, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "flavorprofiles": [
                select_fields(present_flavor_profile(p), fields) for p in page.items
            ],
            "flavorprofiles_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_flavor_profile(
    body: FlavorProfileCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    profile = svc.create_profile(d, ctx, KIND, body.flavorprofile.model_dump())
    return ok({"flavorprofile": present_flavor_profile(profile)}, 201)


@router.get("/{profile_id}")
def show_flavor_profile(
    profile_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    fields = parse_fields(query_params(request))
    profile = svc.get_profile(d, ctx, KIND, profile_id)
    return ok({"flavorprofile": select_fields(present_flavor_profile(profile), fields)})


@router.put("/{profile_id}")
def update_flavor_profile(
    profile_id: str,
    body: FlavorProfileUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    profile = svc.update_profile(d, ctx, KIND, profile_id, given(body.flavorprofile))
    return ok({"flavorprofile": present_flavor_profile(profile)})


@router.delete("/{profile_id}", status_code=204)
def delete_flavor_profile(
    profile_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete_profile(d, ctx, KIND, profile_id)
    return no_content()
