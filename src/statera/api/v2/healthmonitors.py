"""/v2/lbaas/healthmonitors"""

from __future__ import annotations

from fastapi import APIRouter

from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.healthmonitor import (
    HealthMonitorCreateBody,
    HealthMonitorUpdateBody,
    present_healthmonitor,
)
from statera.services import healthmonitors as svc

router = APIRouter(prefix="/lbaas/healthmonitors", tags=["healthmonitors"])

add_crud_routes(
    router,
    Resource(
        key="healthmonitor",
        collection_key="healthmonitors",
        id_param="hm_id",
        present=present_healthmonitor,
        create_body=HealthMonitorCreateBody,
        update_body=HealthMonitorUpdateBody,
        service=Service.of(svc),
    ),
)
