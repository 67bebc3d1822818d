"""/v2/lbaas/loadbalancers"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import (
    accepted,
    base_url,
    cascade_flag,
    context,
    deps,
    no_content,
    ok,
    query_params,
)
from statera.api.schemas.base import given
from statera.api.schemas.loadbalancer import (
    LoadBalancerCreateBody,
    LoadBalancerUpdateBody,
    present_loadbalancer,
)
from statera.services import loadbalancers as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/lbaas/loadbalancers", tags=["loadbalancers"])


def present_full(lb_id: str, d: Deps, ctx: RequestContext) -> dict[str, object]:
    """A single-call create answers with the whole tree expanded, as upstream does."""
    from statera.api.schemas.tree import present_tree

    return present_tree(d, ctx, lb_id)


@router.get("")
def list_loadbalancers(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "loadbalancers": [select_fields(present_loadbalancer(lb), fields) for lb in page.items],
            "loadbalancers_links": page.links,
        }
    )


@router.post("", status_code=201)
def create_loadbalancer(
    body: LoadBalancerCreateBody, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    data = body.loadbalancer.model_dump(exclude_unset=True)
    lb = svc.create(d, ctx, data)
    if data.get("listeners") or data.get("pools"):
        return ok({"loadbalancer": present_full(lb.id, d, ctx)}, 201)
    return ok({"loadbalancer": present_loadbalancer(lb)}, 201)


@router.get("/{lb_id}")
def show_loadbalancer(
    lb_id: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    lb = svc.get(d, ctx, lb_id)
    fields = parse_fields(query_params(request))
    return ok({"loadbalancer": select_fields(present_loadbalancer(lb), fields)})


@router.put("/{lb_id}")
def update_loadbalancer(
    lb_id: str,
    body: LoadBalancerUpdateBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    lb = svc.update(d, ctx, lb_id, given(body.loadbalancer))
    return ok({"loadbalancer": present_loadbalancer(lb)})


@router.delete("/{lb_id}", status_code=204)
def delete_loadbalancer(
    lb_id: str, request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, lb_id, cascade=cascade_flag(request))
    return no_content()


@router.get("/{lb_id}/stats")
def loadbalancer_stats(
    lb_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"stats": svc.stats(d, ctx, lb_id)})


@router.get("/{lb_id}/status")
@router.get("/{lb_id}/statuses", include_in_schema=False)
def loadbalancer_status(
    lb_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok(svc.status_tree(d, ctx, lb_id))


@router.put("/{lb_id}/failover", status_code=202)
def failover_loadbalancer(
    lb_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.failover(d, ctx, lb_id)
    return accepted()
