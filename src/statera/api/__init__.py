"""The Octavia v2 REST API (FastAPI)."""
