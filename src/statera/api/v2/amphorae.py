"""/v2/octavia/amphorae (admin only)"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from statera.api.common import accepted, base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.amphora import present_amphora
from statera.services import amphorae as svc
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

router = APIRouter(prefix="/octavia/amphorae", tags=["amphorae"])


@router.get("")
def list_amphorae(
    request: Request, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    params = query_params(request)
    page = svc.list_(d, ctx, params, base_url(request))
    fields = parse_fields(params)
    return ok(
        {
            "amphorae": [select_fields(present_amphora(a), fields) for a in page.items],
            "amphorae_links": page.links,
        }
    )


@router.get("/{amphora_id}")
def show_amphora(
    amphora_id: str,
    request: Request,
    ctx: RequestContext = Depends(context),
    d: Deps = Depends(deps),
) -> JSONResponse:
    fields = parse_fields(query_params(request))
    return ok({"amphora": select_fields(present_amphora(svc.get(d, ctx, amphora_id)), fields)})


@router.get("/{amphora_id}/stats")
def amphora_stats(
    amphora_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> JSONResponse:
    return ok({"amphora_stats": svc.stats(d, ctx, amphora_id)})


@router.put("/{amphora_id}/config", status_code=202)
def configure_amphora(
    amphora_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.update_config(d, ctx, amphora_id)
    return accepted()


@router.put("/{amphora_id}/failover", status_code=202)
def failover_amphora(
    amphora_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.failover(d, ctx, amphora_id)
    return accepted()


@router.delete("/{amphora_id}", status_code=204)
def delete_amphora(
    amphora_id: str, ctx: RequestContext = Depends(context), d: Deps = Depends(deps)
) -> Response:
    svc.delete(d, ctx, amphora_id)
    return no_content()
