"""/v2/lbaas/flavorprofiles"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from statera.api.crud import Resource, add_crud_routes, catalog_profiles
from statera.api.schemas.catalog import (
    FlavorProfileCreateBody,
    FlavorProfileUpdateBody,
    present_flavor_profile,
)
from statera.services import catalog as svc

router = APIRouter(prefix="/lbaas/flavorprofiles", tags=["flavor profiles"])


def _all_fields(body: FlavorProfileCreateBody) -> dict[str, Any]:
    # Profiles are stored whole: fields the client left out get their defaults.
    return body.flavorprofile.model_dump()


add_crud_routes(
    router,
    Resource(
        key="flavorprofile",
        collection_key="flavorprofiles",
        id_param="profile_id",
        present=present_flavor_profile,
        create_body=FlavorProfileCreateBody,
        update_body=FlavorProfileUpdateBody,
        service=catalog_profiles(svc.FLAVOR_PROFILE),
        create_data=_all_fields,
        singular="flavor_profile",
        plural="flavor_profiles",
    ),
)
