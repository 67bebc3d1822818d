"""What steps ask the compute driver about amphorae that are going away."""

from __future__ import annotations

import logging

from statera.domain import model as d
from statera.worker.engine import Env

LOG = logging.getLogger(__name__)


def instance_alive(env: Env, amp: d.Amphora) -> bool:
    """Whether an amphora that is going away can still be asked to clean up: one whose
    instance is gone or broken would only cost the agent calls' full retries (minutes)."""
    try:
        return env.drivers.compute.status(amp.compute_id or amp.id).status == "ACTIVE"
    except Exception as exc:
        LOG.info("status of retiring amphora %s unknown: %s", amp.id, exc)
        return False
