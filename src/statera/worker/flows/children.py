"""Flows for changes to a load balancer's children. They all have the same shape: push the
whole load balancer's new config to its amphorae, then settle the tree."""

from __future__ import annotations

from typing import Any

from statera.db import models as m
from statera.worker.engine import Flow
from statera.worker.steps import amphorae as amp
from statera.worker.steps.context import LbContext
from statera.worker.steps.lifecycle import ChildErrorOnRevert, SettleTree

CHANGE = Flow("change_child", LbContext, [
    ChildErrorOnRevert(),
    amp.ApplyConfig(),
    SettleTree(),
])


def _child(op: m.Operation) -> dict[str, Any]:
    return {"lb_id": op.load_balancer_id, "target_type": op.target_type,
            "target_id": op.target_id}


def _batch(op: m.Operation) -> dict[str, Any]:
    batch = {k: [str(i) for i in op.payload.get(k, []) or []]  # type: ignore[attr-defined]
             for k in ("created", "updated", "deleted")}
    return {"lb_id": op.load_balancer_id, "target_type": None, "target_id": None,
            "batch": batch}


FLOWS: dict[str, Any] = {
    f"{action}_{target}": (CHANGE, _child)
    for target in ("listener", "pool", "member", "healthmonitor", "l7policy", "l7rule")
    for action in ("create", "update", "delete")
}
FLOWS["batch_update_members"] = (CHANGE, _batch)
