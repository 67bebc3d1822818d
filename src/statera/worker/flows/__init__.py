"""Which flow runs each kind of operation, and the context it starts from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statera.db import models as m
from statera.worker.engine import Flow
from statera.worker.flows import amphora, children, loadbalancer

FlowFactory = tuple[Flow[Any], Callable[[m.Operation], dict[str, Any]]]

FLOWS: dict[str, FlowFactory] = {}
FLOWS.update(loadbalancer.FLOWS)
FLOWS.update(children.FLOWS)
FLOWS.update(amphora.FLOWS)


def flow_for(op: m.Operation) -> tuple[Flow[Any], dict[str, Any]]:
    if op.kind == "failover_amphora" and not op.load_balancer_id:
        flow, initial = FLOWS["delete_amphora"]
        return flow, initial(op)
    try:
        flow, initial = FLOWS[op.kind]
    except KeyError:
        raise LookupError(f"no flow for operation kind {op.kind!r}") from None
    return flow, initial(op)
