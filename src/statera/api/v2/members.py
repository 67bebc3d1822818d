"""/v2/lbaas/pools/{pool_id}/members, including the batch update (PUT on the collection)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from statera.api.common import accepted, context, deps
from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.member import (
    MemberCreateBody,
    MembersBatchBody,
    MemberUpdateBody,
    present_member,
)
from statera.domain.errors import InvalidInput
from statera.services import members as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(prefix="/lbaas/pools/{pool_id}/members", tags=["members"])

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f", ""}


def _additive_only(request: Request) -> bool:
    raw = request.query_params.get("additive_only", "false").lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidInput(
        f"Invalid input for field/attribute additive_only. Value: '{raw}'. Expected a boolean."
    )


add_crud_routes(
    router,
    Resource(
        key="member",
        collection_key="members",
        id_param="member_id",
        present=present_member,
        create_body=MemberCreateBody,
        update_body=MemberUpdateBody,
        service=Service.of(svc),
        parent_params=("pool_id",),
    ),
)


@router.put("", status_code=202)
def batch_update_members(
    pool_id: str,
    body: MembersBatchBody,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> Response:
    items = [item.model_dump(exclude_unset=True) for item in body.members]
    svc.batch_update(d, ctx, pool_id, items, additive_only=_additive_only(request))
    return accepted()
