"""Routes of /flavorprofiles (being written)."""

from fastapi import APIRouter

router = APIRouter()
