"""Routes of /pools (being written)."""

from fastapi import APIRouter

router = APIRouter()
