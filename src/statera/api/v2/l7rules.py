"""Routes of /l7rules (being written)."""

from fastapi import APIRouter

router = APIRouter()
