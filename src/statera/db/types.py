"""Small column helpers shared by the models and repositories."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC now: every DB stores it the same way, and comparisons stay simple."""
    return datetime.now(UTC).replace(tzinfo=None)
