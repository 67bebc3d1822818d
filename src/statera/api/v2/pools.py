"""/v2/lbaas/pools"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.base import given
from statera.api.schemas.pool import PoolCreateBody, PoolUpdateBody, present_pool
from statera.services import pools as svc

router = APIRouter(prefix="/lbaas/pools", tags=["pools"])


def _pool_changes(body: PoolUpdateBody) -> dict[str, Any]:
    # session_persistence is a nested object: pass on only the keys the client sent.
    changes = given(body.pool)
    if body.pool.session_persistence is not None:
        changes["session_persistence"] = body.pool.session_persistence.model_dump(
            exclude_unset=True
        )
    return changes


add_crud_routes(
    router,
    Resource(
        key="pool",
        collection_key="pools",
        id_param="pool_id",
        present=present_pool,
        create_body=PoolCreateBody,
        update_body=PoolUpdateBody,
        service=Service.of(svc),
        update_changes=_pool_changes,
    ),
)
