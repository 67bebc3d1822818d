"""/v2/lbaas/availabilityzones (keyed by name)"""

from __future__ import annotations

from fastapi import APIRouter

from statera.api.crud import Resource, add_crud_routes, catalog_entries
from statera.api.schemas.catalog import (
    AvailabilityZoneCreateBody,
    AvailabilityZoneUpdateBody,
    present_availability_zone,
)
from statera.services import catalog as svc

router = APIRouter(prefix="/lbaas/availabilityzones", tags=["availability zones"])

add_crud_routes(
    router,
    Resource(
        key="availability_zone",
        collection_key="availability_zones",
        id_param="name",
        present=present_availability_zone,
        create_body=AvailabilityZoneCreateBody,
        update_body=AvailabilityZoneUpdateBody,
        service=catalog_entries(svc.AVAILABILITY_ZONE),
    ),
)
