"""Request models (pydantic, for validation and the OpenAPI document) and the explicit
conversions from database rows to Octavia's JSON shapes."""
