"""/v2/lbaas/pools/{pool_id}/members, including the batch update (PUT on the collection)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import accepted, base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
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
from statera.services.listing import parse_fields, select_fields

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


@router.get("")
def list_members(
    pool_id: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, pool_id, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "members": [select_fields(present_member(mb), fields) for mb in page.items],
            "members_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_member(
    pool_id: str,
    body: MemberCreateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    member = svc.create(d, ctx, pool_id, body.member.model_dump(exclude_unset=True))
    return ok({"member": present_member(member)}, 201)


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


@router.get("/{member_id}")
def show_member(
    pool_id: str,
    member_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    member = svc.get(d, ctx, pool_id, member_id)
    fields = parse_fields(query_params(request))
    return ok({"member": select_fields(present_member(member), fields)})


@router.put("/{member_id}")
def update_member(
    pool_id: str,
    member_id: str,
    body: MemberUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    member = svc.update(d, ctx, pool_id, member_id, given(body.member))
    return ok({"member": present_member(member)})


@router.delete("/{member_id}", status_code=204)
def delete_member(
    pool_id: str, member_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, pool_id, member_id)
    return no_content()
