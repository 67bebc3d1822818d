"""The five standard routes (list, create, show, update, delete) of an Octavia resource.

Routers for listeners, pools, health monitors, L7 policies, L7 rules, members, flavors,
availability zones and their profiles differ only in their JSON keys, path parameter names,
presenter, body models and service functions; this registers the same handlers for each.
Anything a resource does beyond that stays in its own router.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from statera.api.common import base_url, context, deps, no_content, ok, query_params
from statera.api.schemas.base import given
from statera.services import catalog
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.listing import parse_fields, select_fields

_KW = inspect.Parameter.KEYWORD_ONLY
_REQUEST = inspect.Parameter("request", _KW, annotation=Request)
_CTX = inspect.Parameter("ctx", _KW, annotation=RequestContext, default=Depends(context))
_DEPS = inspect.Parameter("d", _KW, annotation=Deps, default=Depends(deps))


@dataclass(frozen=True)
class Service:
    """A resource's service functions; each takes (d, ctx, *scope, *parent ids, ...)."""

    list_: Callable[..., Any]
    get: Callable[..., Any]
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    scope: tuple[Any, ...] = ()  # leading arguments after (d, ctx), e.g. the catalog kind

    @classmethod
    def of(cls, module: ModuleType) -> Service:
        """A service module with the usual list_, get, create, update and delete."""
        return cls(module.list_, module.get, module.create, module.update, module.delete)


def catalog_profiles(kind: catalog.ProfileKind) -> Service:
    c = catalog
    fns = (c.list_profiles, c.get_profile, c.create_profile, c.update_profile, c.delete_profile)
    return Service(*fns, scope=(kind,))


def catalog_entries(kind: catalog.EntryKind) -> Service:
    c = catalog
    fns = (c.list_entries, c.get_entry, c.create_entry, c.update_entry, c.delete_entry)
    return Service(*fns, scope=(kind,))


@dataclass(frozen=True)
class Resource:
    """How one resource looks on the wire and which service serves it."""

    key: str  # JSON key of one object ("listener", "rule")
    collection_key: str  # JSON key of the list ("listeners", "rules")
    id_param: str  # path parameter naming one object ("listener_id")
    present: Callable[[Any], dict[str, Any]]
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    service: Service
    parent_params: tuple[str, ...] = ()  # path parameters of the parent ("pool_id",)
    # Handler names (operation ids, summaries) when they differ from the JSON keys:
    # create_<singular>, list_<plural>.
    singular: str = ""
    plural: str = ""
    create_data: Callable[[Any], dict[str, Any]] | None = field(default=None)
    update_changes: Callable[[Any], dict[str, Any]] | None = field(default=None)

    def data(self, body: BaseModel) -> dict[str, Any]:
        if self.create_data is not None:
            return self.create_data(body)
        return getattr(body, self.key).model_dump(exclude_unset=True)  # type: ignore[no-any-return]

    def changes(self, body: BaseModel) -> dict[str, Any]:
        if self.update_changes is not None:
            return self.update_changes(body)
        return given(getattr(body, self.key))


def _endpoint(
    handler: Callable[..., Response], params: list[inspect.Parameter], returns: type[Response]
) -> Callable[..., Response]:
    # FastAPI reads parameters from the signature, so the path parameter names stay per resource.
    handler.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    return handler


def add_crud_routes(router: APIRouter, res: Resource) -> None:
    svc = res.service
    parents = [inspect.Parameter(p, _KW, annotation=str) for p in res.parent_params]
    one = inspect.Parameter(res.id_param, _KW, annotation=str)
    create_body = inspect.Parameter("body", _KW, annotation=res.create_body)
    update_body = inspect.Parameter("body", _KW, annotation=res.update_body)

    def leading(kw: dict[str, Any]) -> list[Any]:
        return [*svc.scope, *(kw[p] for p in res.parent_params)]

    def list_items(**kw: Any) -> JSONResponse:
        request = kw["request"]
        params = query_params(request)
        page = svc.list_(kw["d"], kw["ctx"], *leading(kw), params, base_url(request))
        fields = parse_fields(params)
        return ok(
            {
                res.collection_key: [select_fields(res.present(i), fields) for i in page.items],
                f"{res.collection_key}_links": page.links,
            }
        )

    def create_item(**kw: Any) -> JSONResponse:
        item = svc.create(kw["d"], kw["ctx"], *leading(kw), res.data(kw["body"]))
        return ok({res.key: res.present(item)}, 201)

    def show_item(**kw: Any) -> JSONResponse:
        item = svc.get(kw["d"], kw["ctx"], *leading(kw), kw[res.id_param])
        fields = parse_fields(query_params(kw["request"]))
        return ok({res.key: select_fields(res.present(item), fields)})

    def update_item(**kw: Any) -> JSONResponse:
        changes = res.changes(kw["body"])
        item = svc.update(kw["d"], kw["ctx"], *leading(kw), kw[res.id_param], changes)
        return ok({res.key: res.present(item)})

    def delete_item(**kw: Any) -> Response:
        svc.delete(kw["d"], kw["ctx"], *leading(kw), kw[res.id_param])
        return no_content()

    item = f"/{{{res.id_param}}}"
    singular = res.singular or res.key
    router.add_api_route(
        "",
        _endpoint(list_items, [*parents, _REQUEST, _CTX, _DEPS], JSONResponse),
        methods=["GET"],
        name=f"list_{res.plural or res.collection_key}",
    )
    router.add_api_route(
        "",
        _endpoint(create_item, [*parents, create_body, _CTX, _DEPS], JSONResponse),
        methods=["POST"],
        status_code=201,
        name=f"create_{singular}",
    )
    router.add_api_route(
        item,
        _endpoint(show_item, [*parents, one, _REQUEST, _CTX, _DEPS], JSONResponse),
        methods=["GET"],
        name=f"show_{singular}",
    )
    router.add_api_route(
        item,
        _endpoint(update_item, [*parents, one, update_body, _CTX, _DEPS], JSONResponse),
        methods=["PUT"],
        name=f"update_{singular}",
    )
    router.add_api_route(
        item,
        _endpoint(delete_item, [*parents, one, _CTX, _DEPS], Response),
        methods=["DELETE"],
        status_code=204,
        name=f"delete_{singular}",
    )
