"""/v2/lbaas/l7policies"""

from __future__ import annotations

from fastapi import APIRouter

from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.l7policy import (
    L7PolicyCreateBody,
    L7PolicyUpdateBody,
    present_l7policy,
)
from statera.services import l7policies as svc

router = APIRouter(prefix="/lbaas/l7policies", tags=["l7policies"])

add_crud_routes(
    router,
    Resource(
        key="l7policy",
        collection_key="l7policies",
        id_param="l7policy_id",
        present=present_l7policy,
        create_body=L7PolicyCreateBody,
        update_body=L7PolicyUpdateBody,
        service=Service.of(svc),
    ),
)
