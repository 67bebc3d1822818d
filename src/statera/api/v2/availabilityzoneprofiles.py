"""/v2/lbaas/availabilityzoneprofiles"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.catalog import (
    AvailabilityZoneProfileCreateBody,
    AvailabilityZoneProfileUpdateBody,
    present_availability_zone_profile,
)
from statera.services import catalog as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/availabilityzoneprofiles", tags=["availability zone profiles"])
KIND = svc.AZ_PROFILE


@router.get("")
def list_availability_zone_profiles(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_profiles(d, ctx, KIND, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "availability_zone_profiles": [
                select_fields(present_availability_zone_profile(p), fields) for p in page.items
            ],
            "availability_zone_profiles_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_availability_zone_profile(
    body: AvailabilityZoneProfileCreateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    profile = svc.create_profile(d, ctx, KIND, body.availability_zone_profile.model_dump())
    return ok({"availability_zone_profile": present_availability_zone_profile(profile)}, 201)


@router.get("/{profile_id}")
def show_availability_zone_profile(
    profile_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    fields = parse_fields(query_params(request))
    profile = svc.get_profile(d, ctx, KIND, profile_id)
    return ok(
        {
            "availability_zone_profile": select_fields(
                present_availability_zone_profile(profile), fields
            )
        }
    )


@router.put("/{profile_id}")
def update_availability_zone_profile(
    profile_id: str,
    body: AvailabilityZoneProfileUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    profile = svc.update_profile(d, ctx, KIND, profile_id, given(body.availability_zone_profile))
    return ok({"availability_zone_profile": present_availability_zone_profile(profile)})


@router.delete("/{profile_id}", status_code=204)
def delete_availability_zone_profile(
    profile_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete_profile(d, ctx, KIND, profile_id)
    return no_content()
