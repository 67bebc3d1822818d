"""Routes of /healthmonitors (being written)."""

from fastapi import APIRouter

router = APIRouter()
