"""Logging set-up for every process."""

from __future__ import annotations

import logging
import sys


def setup_logging(debug: bool) -> None:
    root = logging.getLogger()
    if getattr(root, "_statera", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("uvicorn.access", "httpx", "alembic.runtime.migration",
                  "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root._statera = True  # type: ignore[attr-defined]
