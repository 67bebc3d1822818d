"""/v2/lbaas/flavors"""

from __future__ import annotations

from fastapi import APIRouter

from statera.api.crud import Resource, add_crud_routes, catalog_entries
from statera.api.schemas.catalog import (
    FlavorCreateBody,
    FlavorUpdateBody,
    present_flavor,
)
from statera.services import catalog as svc

router = APIRouter(prefix="/lbaas/flavors", tags=["flavors"])

add_crud_routes(
    router,
    Resource(
        key="flavor",
        collection_key="flavors",
        id_param="flavor_id",
        present=present_flavor,
        create_body=FlavorCreateBody,
        update_body=FlavorUpdateBody,
        service=catalog_entries(svc.FLAVOR),
    ),
)
