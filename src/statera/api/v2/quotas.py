"""Routes of /quotas (being written)."""

from fastapi import APIRouter

router = APIRouter()
