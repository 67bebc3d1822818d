"""Users of the http_basic auth strategy: a name, a password (stored as an scrypt hash), a
project and roles. Managed with ``statera user add|list|delete``.

The hash format is the one ``statera.api.auth.verify_password`` checks: ``scrypt$<salt>$<key>``
(base64, N=2**14, r=8, p=1, 32-byte key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from statera.db import models as m
from statera.db.database import Database
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services.policy import KNOWN_ROLES

ROLES = KNOWN_ROLES
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class UserInfo:
    """What may be shown about a user: never the password hash."""

    name: str
    project_id: str
    roles: list[str]
    created_at: datetime | None


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)  # type: ignore[arg-type]
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = encoded.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)  # type: ignore[arg-type]
    return hmac.compare_digest(candidate, digest)


def _check(name: str, password: str, project_id: str, roles: list[str]) -> None:
    if not name or len(name) > 255 or ":" in name or not name.isprintable():
        raise InvalidInput("A user name is 1 to 255 printable characters without ':'.")
    if not password:
        raise InvalidInput("The password must not be empty.")
    if not project_id or len(project_id) > 36 or not project_id.isprintable():
        raise InvalidInput("A project id is 1 to 36 printable characters.")
    if not roles:
        raise InvalidInput("Give the user at least one role.")
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        raise InvalidInput(
            f"Unknown role(s): {', '.join(unknown)}. Known roles: {', '.join(sorted(ROLES))}."
        )


def add_user(
    db: Database, name: str, password: str, project_id: str, roles: Iterable[str]
) -> UserInfo:
    role_list = list(dict.fromkeys(roles))
    _check(name, password, project_id, role_list)
    hashed = hash_password(password)
    with db.write() as session:
        if session.get(m.User, name) is not None:
            raise Conflict(f"User {name} already exists.")
        user = m.User(name=name, password_hash=hashed, project_id=project_id, roles=role_list)
        session.add(user)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(f"User {name} already exists.") from None
        return UserInfo(user.name, user.project_id, list(user.roles), user.created_at)


def list_users(db: Database) -> list[UserInfo]:
    with db.read() as session:
        return [
            UserInfo(u.name, u.project_id, list(u.roles), u.created_at)
            for u in session.scalars(sa.select(m.User).order_by(m.User.name))
        ]


def delete_user(db: Database, name: str) -> None:
    with db.write() as session:
        user = session.get(m.User, name)
        if user is None:
            raise NotFound(resource="User", id=name)
        session.delete(user)
