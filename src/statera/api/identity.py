"""A minimal, read-only, Keystone-shaped view of projects.

Standalone Statera has no project registry: a project is any id its users and objects name.
The stock CLI resolves a project argument (``quota set … PROJECT``, ``--project``) through
the identity API at the same endpoint, so each id is answered as a project of that name.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from statera.api.common import context, ok
from statera.domain.errors import NotFound
from statera.services.context import RequestContext

router = APIRouter(tags=["identity (read-only)"], include_in_schema=False)
_PROJECT = re.compile(r"\A[A-Za-z0-9_.@-]{1,64}\Z")


def _project(project_id: str) -> dict[str, object]:
    return {"id": project_id, "name": project_id, "domain_id": "default", "enabled": True,
            "description": "", "is_domain": False, "parent_id": "default",
            "links": {"self": f"/v3/projects/{project_id}"}}


@router.get("/projects/{project_id}")
def show_project(project_id: str, _ctx: RequestContext = Depends(context)) -> JSONResponse:
    if not _PROJECT.match(project_id):
        raise NotFound(resource="Project", id=project_id)
    return ok({"project": _project(project_id)})


@router.get("/projects")
def list_projects(request: Request, _ctx: RequestContext = Depends(context)) -> JSONResponse:
    names = [n for n in request.query_params.getlist("name") if _PROJECT.match(n)]
    return ok({"projects": [_project(n) for n in names], "links": {"self": None,
                                                                   "next": None,
                                                                   "previous": None}})
