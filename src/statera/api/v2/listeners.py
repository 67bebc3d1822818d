"""/v2/lbaas/listeners"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from statera.api.common import context, deps, ok
from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.listener import (
    ListenerCreateBody,
    ListenerUpdateBody,
    present_listener,
)
from statera.services import listeners as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(prefix="/lbaas/listeners", tags=["listeners"])

add_crud_routes(
    router,
    Resource(
        key="listener",
        collection_key="listeners",
        id_param="listener_id",
        present=present_listener,
        create_body=ListenerCreateBody,
        update_body=ListenerUpdateBody,
        service=Service.of(svc),
    ),
)


@router.get("/{listener_id}/stats")
def listener_stats(
    listener_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"stats": svc.stats(d, ctx, listener_id)})
