"""Routes of /listeners (being written)."""

from fastapi import APIRouter

router = APIRouter()
