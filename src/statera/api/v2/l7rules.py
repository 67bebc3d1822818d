"""/v2/lbaas/l7policies/{l7policy_id}/rules"""

from __future__ import annotations

from fastapi import APIRouter

from statera.api.crud import Resource, Service, add_crud_routes
from statera.api.schemas.l7rule import L7RuleCreateBody, L7RuleUpdateBody, present_l7rule
from statera.services import l7rules as svc

router = APIRouter(prefix="/lbaas/l7policies/{l7policy_id}/rules", tags=["l7rules"])

add_crud_routes(
    router,
    Resource(
        key="rule",
        collection_key="rules",
        id_param="rule_id",
        present=present_l7rule,
        create_body=L7RuleCreateBody,
        update_body=L7RuleUpdateBody,
        service=Service.of(svc),
        parent_params=("l7policy_id",),
        singular="l7rule",
        plural="l7rules",
    ),
)
