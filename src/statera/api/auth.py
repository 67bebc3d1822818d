"""Who is calling. ``noauth``: upstream semantics, everyone is admin and the project comes
from X-Project-Id. ``http_basic``: users from the user table (statera user add)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time

import sqlalchemy as sa
from fastapi import Request

from statera.db import models as m
from statera.db.database import Database
from statera.domain.errors import NotAuthenticated
from statera.services.context import RequestContext
from statera.services.users import hash_password, verify_password

__all__ = ["BasicAuthenticator", "hash_password", "noauth_context", "verify_password"]

class BasicAuthenticator:
    """Checks Basic credentials against the user table. Successful checks are remembered
    for a short while (keyed by a hash of the credentials) so that scrypt's deliberate cost
    is paid once per client, not once per request."""

    def __init__(self, db: Database, ttl: float = 60.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[bytes, tuple[float, RequestContext]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None, request_id: str | None) -> RequestContext:
        if not header or not header.lower().startswith("basic "):
            raise NotAuthenticated("Authentication required: send HTTP Basic credentials.")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthenticated("Malformed Basic credentials.") from None
        name, sep, password = decoded.partition(":")
        if not sep:
            raise NotAuthenticated("Malformed Basic credentials.")
        key = hashlib.sha256(decoded.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            ctx = hit[1]
        else:
            with self.db.read() as s:
                user = s.scalars(sa.select(m.User).where(m.User.name == name)).first()
                if user is None or not verify_password(password, user.password_hash):
                    raise NotAuthenticated("Invalid username or password.")
                roles = frozenset(user.roles)
                ctx = RequestContext(project_id=user.project_id, user=user.name, roles=roles,
                                     is_admin="admin" in roles)
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[key] = (now + self.ttl, ctx)
        return RequestContext(project_id=ctx.project_id, user=ctx.user, roles=ctx.roles,
                              is_admin=ctx.is_admin, request_id=request_id)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def noauth_context(request: Request, request_id: str | None,
                   default_project: str | None = None) -> RequestContext:
    headers = request.headers
    project = headers.get("x-project-id") or headers.get("x-tenant-id") or default_project
    roles = frozenset(r.strip() for r in headers.get("x-roles", "").split(",") if r.strip())
    return RequestContext(project_id=project, user=headers.get("x-user-id"),
                          roles=roles | {"admin"}, is_admin=True, request_id=request_id,
                          noauth=True)
