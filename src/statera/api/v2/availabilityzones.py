"""/v2/lbaas/availabilityzones (keyed by name)"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.catalog import (
    AvailabilityZoneCreateBody,
    AvailabilityZoneUpdateBody,
    present_availability_zone,
)
from statera.services import catalog as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/availabilityzones", tags=["availability zones"])
KIND = svc.AVAILABILITY_ZONE


@router.get("")
def list_availability_zones(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_entries(d, ctx, KIND, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "availability_zones": [
                select_fields(present_availability_zone(z), fields) for z in page.items
            ],
            "availability_zones_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_availability_zone(
    body: AvailabilityZoneCreateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    zone = svc.create_entry(d, ctx, KIND, body.availability_zone.model_dump(exclude_unset=True))
    return ok({"availability_zone": present_availability_zone(zone)}, 201)


@router.get("/{name}")
def show_availability_zone(
    name: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    fields = parse_fields(query_params(request))
    zone = svc.get_entry(d, ctx, KIND, name)
    return ok({"availability_zone": select_fields(present_availability_zone(zone), fields)})


@router.put("/{name}")
def update_availability_zone(
    name: str,
    body: AvailabilityZoneUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    zone = svc.update_entry(d, ctx, KIND, name, given(body.availability_zone))
    return ok({"availability_zone": present_availability_zone(zone)})


@router.delete("/{name}", status_code=204)
def delete_availability_zone(
    name: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete_entry(d, ctx, KIND, name)
    return no_content()
