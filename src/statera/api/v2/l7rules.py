"""/v2/lbaas/l7policies/{l7policy_id}/rules"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.api.schemas.l7rule import L7RuleCreateBody, L7RuleUpdateBody, present_l7rule
from statera.services import l7rules as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/l7policies/{l7policy_id}/rules", tags=["l7rules"])


@router.get("")
def list_l7rules(
    l7policy_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, l7policy_id, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "rules": [select_fields(present_l7rule(r), fields) for r in page.items],
            "rules_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_l7rule(
    l7policy_id: str,
    body: L7RuleCreateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    rule = svc.create(d, ctx, l7policy_id, body.rule.model_dump(exclude_unset=True))
    return ok({"rule": present_l7rule(rule)}, 201)


@router.get("/{rule_id}")
def show_l7rule(
    l7policy_id: str,
    rule_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    rule = svc.get(d, ctx, l7policy_id, rule_id)
    fields = parse_fields(query_params(request))
    return ok({"rule": select_fields(present_l7rule(rule), fields)})


@router.put("/{rule_id}")
def update_l7rule(
    l7policy_id: str,
    rule_id: str,
    body: L7RuleUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    rule = svc.update(d, ctx, l7policy_id, rule_id, given(body.rule))
    return ok({"rule": present_l7rule(rule)})


@router.delete("/{rule_id}", status_code=204)
def delete_l7rule(
    l7policy_id: str, rule_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, l7policy_id, rule_id)
    return no_content()
