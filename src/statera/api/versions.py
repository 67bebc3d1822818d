"""The version document at ``/``: one entry per minor version Statera fully implements.

Clients switch features on by the highest version listed, so a version appears here only
when everything it added works. v2.16 (HTTP/TCP monitors on UDP pools) waits for UDP.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from statera.api.common import ok, root_url

VERSIONS: list[tuple[str, str]] = [
    ("v2.0", "2016-12-11T00:00:00Z"),
    ("v2.1", "2018-04-20T00:00:00Z"),
    ("v2.2", "2018-07-31T00:00:00Z"),
    ("v2.3", "2018-12-18T00:00:00Z"),
    ("v2.4", "2018-12-19T00:00:00Z"),
    ("v2.5", "2019-01-21T00:00:00Z"),
    ("v2.6", "2019-01-25T00:00:00Z"),
    ("v2.7", "2018-01-25T00:00:00Z"),
    ("v2.8", "2019-02-12T00:00:00Z"),
    ("v2.9", "2019-03-04T00:00:00Z"),
    ("v2.10", "2019-03-05T00:00:00Z"),
    ("v2.11", "2019-06-24T00:00:00Z"),
    ("v2.12", "2019-09-11T00:00:00Z"),
    ("v2.13", "2019-09-13T00:00:00Z"),
    ("v2.14", "2019-11-10T00:00:00Z"),
    ("v2.15", "2020-03-10T00:00:00Z"),
]
MAX_VERSION = VERSIONS[-1][0]

router = APIRouter()


def version_document(base: str) -> dict[str, object]:
    versions = []
    for i, (vid, updated) in enumerate(VERSIONS):
        versions.append({
            "id": vid,
            "status": "CURRENT" if i == len(VERSIONS) - 1 else "SUPPORTED",
            "updated": updated,
            "links": [{"href": f"{base}/v2", "rel": "self"}],
        })
    return {"versions": versions}


@router.get("/", include_in_schema=False)
def root(request: Request):  # type: ignore[no-untyped-def]
    return ok(version_document(root_url(request)))


@router.get("/v2", include_in_schema=False)
@router.get("/v2.0", include_in_schema=False)
def v2_root(request: Request):  # type: ignore[no-untyped-def]
    doc = version_document(root_url(request))
    return ok({"version": doc["versions"][-1]})  # type: ignore[index]
