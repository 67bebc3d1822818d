"""/v2/lbaas/availabilityzoneprofiles"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from statera.api.crud import Resource, add_crud_routes, catalog_profiles
from statera.api.schemas.catalog import (
    AvailabilityZoneProfileCreateBody,
    AvailabilityZoneProfileUpdateBody,
    present_availability_zone_profile,
)
from statera.services import catalog as svc

router = APIRouter(prefix="/lbaas/availabilityzoneprofiles", tags=["availability zone profiles"])


def _all_fields(body: AvailabilityZoneProfileCreateBody) -> dict[str, Any]:
    # Profiles are stored whole: fields the client left out get their defaults.
    return body.availability_zone_profile.model_dump()


add_crud_routes(
    router,
    Resource(
        key="availability_zone_profile",
        collection_key="availability_zone_profiles",
        id_param="profile_id",
        present=present_availability_zone_profile,
        create_body=AvailabilityZoneProfileCreateBody,
        update_body=AvailabilityZoneProfileUpdateBody,
        service=catalog_profiles(svc.AZ_PROFILE),
        create_data=_all_fields,
    ),
)
