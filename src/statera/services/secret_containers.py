"""Secret containers: the Barbican-shaped ``/v1/containers`` of the secret store.

A container names secrets of its own project under fixed roles. Octavia users store a TLS
certificate either as one PKCS12 secret or, the older way, as a ``certificate`` container
whose ``certificate``, ``private_key``, ``intermediates`` and ``private_key_passphrase`` are
secrets of their own; listeners and pools accept the container's URL wherever they accept a
certificate reference (``secrets.check_ref`` and ``secrets.resolver`` read it).
``generic`` and ``rsa`` containers are kept and listed as Barbican keeps them, but only a
certificate container serves as TLS material.

A container in use by a live listener or pool cannot be deleted (409), and neither can a
secret a container names: a later failover must find everything a listener was accepted
with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services.common import authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.secrets import (
    CONTAINER_PARTS,
    MAX_LIST_LIMIT,
    container_id_of,
    int_param,
    live_secret,
    referencing,
    secret_id_of,
    storing_project,
    text_field,
)

CONTAINER_TYPES = ("generic", "certificate", "rsa")
# Which names each type takes, and which it must have (Barbican's rules).
ALLOWED_NAMES: dict[str, frozenset[str] | None] = {
    "generic": None,
    "certificate": frozenset(CONTAINER_PARTS),
    "rsa": frozenset({"private_key", "public_key", "private_key_passphrase"}),
}
REQUIRED_NAMES = {"generic": frozenset[str](), "certificate": frozenset({"certificate"}),
                  "rsa": frozenset({"private_key", "public_key"})}
BODY_KEYS = frozenset({"name", "type", "secret_refs"})
MAX_REFS = 32


def _secret_refs(session: Session, project_id: str, container_type: str,
                 value: Any) -> dict[str, str]:
    """name -> secret id, each a live secret of ``project_id``."""
    if value is None:
        value = []
    if not isinstance(value, list) or len(value) > MAX_REFS:
        raise InvalidInput(f"secret_refs must be a list of at most {MAX_REFS} "
                           "{name, secret_ref} objects.")
    refs: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "secret_ref"}:
            raise InvalidInput("Each of secret_refs is an object with a name and a "
                               "secret_ref.")
        name, ref = item.get("name"), item.get("secret_ref")
        if not isinstance(name, str) or not name or len(name) > 255:
            raise InvalidInput("Each of secret_refs needs a name of 1 to 255 characters.")
        if name in refs:
            raise InvalidInput(f"secret_refs names {name!r} twice.")
        secret_id = secret_id_of(ref) if isinstance(ref, str) else None
        if secret_id is None:
            raise InvalidInput(f"The secret_ref of {name!r} is not a secret reference "
                               "(<base>/v1/secrets/<uuid> or a uuid).")
        secret = live_secret(session, secret_id)
        # Another project's secret is reported exactly like a missing one.
        if secret is None or secret.project_id != project_id:
            raise InvalidInput(f"The secret_ref of {name!r} names no secret of this "
                               "project.")
        refs[name] = secret_id
    allowed = ALLOWED_NAMES[container_type]
    if allowed is not None and set(refs) - allowed:
        odd = sorted(set(refs) - allowed)[0]
        raise InvalidInput(f"A {container_type} container takes only the secret names "
                           f"{', '.join(sorted(allowed))}; {odd!r} is not one of them.")
    missing = REQUIRED_NAMES[container_type] - set(refs)
    if missing:
        raise InvalidInput(f"A {container_type} container needs a secret named "
                           f"{sorted(missing)[0]!r}.")
    return refs


def store(deps: Deps, ctx: RequestContext, body: Mapping[str, Any]) -> m.SecretContainer:
    project_id = storing_project(ctx, body, "container", BODY_KEYS)
    container_type = body.get("type")
    if container_type not in CONTAINER_TYPES:
        raise InvalidInput(f"type must be one of {', '.join(CONTAINER_TYPES)}.")
    name = text_field(body, "name")
    container_id = new_id()

    def work(session: Session) -> m.SecretContainer:
        refs = _secret_refs(session, project_id, str(container_type), body.get("secret_refs"))
        container = m.SecretContainer(id=container_id, project_id=project_id,
                                      creator_id=ctx.user, name=name, type=container_type)
        container.refs = [m.SecretContainerRef(name=n, secret_id=s) for n, s in refs.items()]
        session.add(container)
        session.flush()
        session.refresh(container)
        return container

    container: m.SecretContainer = deps.db.write_retrying(work)
    return container


def _visible(session: Session, ctx: RequestContext, ref: str, action: str) -> m.SecretContainer:
    container_id = container_id_of(ref) or (ref.lower() if secret_id_of(ref) else None)
    container = session.get(m.SecretContainer, container_id) if container_id else None
    if container is None:
        raise NotFound(resource="Container", id=ref)
    authorize(ctx, action, container.project_id)
    return container


def get(deps: Deps, ctx: RequestContext, container_id: str) -> m.SecretContainer:
    with deps.db.read() as session:
        return _visible(session, ctx, container_id, "secret:get_one")


def list_(deps: Deps, ctx: RequestContext, params: Mapping[str, list[str]]
          ) -> tuple[list[m.SecretContainer], int, int, int]:
    """The caller's project's containers, filtered by ``name`` and ``type``; the page, the
    total, and the limit and offset used."""
    authorize(ctx, "secret:get_all", ctx.project_id)
    limit = int_param(params, "limit", 10, MAX_LIST_LIMIT)
    offset = int_param(params, "offset", 0, 2**31)
    C = m.SecretContainer
    where = [C.project_id == ctx.project_id]
    for key, column in (("name", C.name), ("type", C.type)):
        if params.get(key):
            where.append(column == params[key][-1])
    with deps.db.read() as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(C).where(*where))
        items = list(session.scalars(sa.select(C).where(*where)
                                     .order_by(C.created_at, C.id).limit(limit).offset(offset)))
    return items, int(total or 0), limit, offset


def delete(deps: Deps, ctx: RequestContext, container_id: str) -> None:
    def work(session: Session) -> None:
        container = _visible(session, ctx, container_id, "secret:delete")
        user = referencing(session, "containers", container.id)
        if user is not None:
            raise Conflict(f"Container {container.id} is in use by {user}: change or delete "
                           "that first.")
        session.delete(container)

    deps.db.write_retrying(work)
