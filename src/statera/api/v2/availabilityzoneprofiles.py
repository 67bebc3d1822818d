"""Routes of /availabilityzoneprofiles (being written)."""

from fastapi import APIRouter

router = APIRouter()
