"""/v2/lbaas/quotas"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import context, deps, ok, query_params
from statera.api.schemas.quota import QuotaBody, present_quota, quota_changes
from statera.services import quotas as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps

router = APIRouter(prefix="/lbaas/quotas", tags=["quotas"])


@router.get("")
def list_quotas(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    rows = svc.list_(d, ctx, query_params(request))
    return ok(
        {"quotas": [present_quota(limits, project) for project, limits in rows], "quotas_links": []}
    )


# Declared before /{project_id}, which would otherwise match "defaults".
@router.get("/defaults")
def show_quota_defaults(
    ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"quota": present_quota(svc.get_defaults(d, ctx))})


@router.get("/{project_id}")
def show_quota(
    project_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"quota": present_quota(svc.get(d, ctx, project_id))})


# Undocumented upstream spelling of the defaults, kept for old clients.
@router.get("/{project_id}/default", include_in_schema=False)
def show_project_quota_defaults(
    project_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"quota": present_quota(svc.get_defaults(d, ctx))})


@router.put("/{project_id}", status_code=202)
def update_quota(
    project_id: str,
    body: QuotaBody,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    limits = svc.update(d, ctx, project_id, quota_changes(body.quota))
    return ok({"quota": present_quota(limits)}, 202)


@router.delete("/{project_id}", status_code=202)
def reset_quota(
    project_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.reset(d, ctx, project_id)
    return Response(status_code=202)
