"""The tenant secret store: a Barbican-shaped subset (``/v1/secrets``) that makes the TLS
container references of listeners and pools work without an OpenStack cloud.

A secret belongs to the project that stored it. Its payload is sealed at rest
(``secret_box``); only the owner (or an admin) reads it back. A reference is the secret's
URL (``<base>/v1/secrets/<uuid>``, as the store answers, from any host) or its bare uuid,
or the URL of a ``certificate`` container (``<base>/v1/containers/<uuid>``, see
``secret_containers``) naming the certificate, key, intermediates and key passphrase as
secrets of their own.

Listeners and pools name secrets by reference; ``check_ref`` is what the API asks before it
accepts one (the secret exists, belongs to the load balancer's project and holds what the
field needs), and ``resolver`` is what the worker uses to turn a reference into the PEM
bundle the amphora gets. Neither puts a payload in an exception, a log line or an operation.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from statera.config import Settings
from statera.db import models as m
from statera.db.database import Database
from statera.db.types import utcnow
from statera.domain.enums import ProvisioningStatus
from statera.domain.errors import Conflict, InvalidInput, NotFound, StepFailed
from statera.services.common import authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps
from statera.services.secret_box import SecretBox, UnsealError
from statera.services.tls_bundles import (
    Need,
    TlsMaterial,
    TlsMaterialError,
    read_certificate_container,
    read_secret,
)

SECRET_TYPES = ("certificate", "private", "opaque", "public", "symmetric", "passphrase")
TEXT = "text/plain"
BINARY_TYPES = ("application/octet-stream", "application/pkcs8", "application/pkix-cert")
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_LIST_LIMIT = 100
BODY_KEYS = frozenset({"name", "payload", "payload_content_type", "payload_content_encoding",
                       "secret_type", "algorithm", "bit_length", "mode", "expiration"})
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_REF = re.compile(rf"\A(?:https?://[^/\s]+(?:/[^\s]*)?/v1/secrets/)?({_UUID})\Z")
_CONTAINER_REF = re.compile(rf"\Ahttps?://[^/\s]+(?:/[^\s]*)?/v1/containers/({_UUID})\Z")


# ---- references --------------------------------------------------------------------------


def secret_id_of(ref: str) -> str | None:
    """The secret id a reference names, or None if it is not a secret reference."""
    found = _REF.match(ref)
    return found.group(1).lower() if found else None


def container_id_of(ref: str) -> str | None:
    """The container id a reference names, or None if it is not a container reference."""
    found = _CONTAINER_REF.match(ref)
    return found.group(1).lower() if found else None


def _refused(ref: str, why: str) -> InvalidInput:
    return InvalidInput(f"Could not retrieve certificate: {ref}: {why}.")


def live_secret(session: Session, secret_id: str, *, expired: bool = False) -> m.Secret | None:
    """The secret, unless it does not exist or (unless ``expired``) has expired."""
    secret = session.get(m.Secret, secret_id)
    if secret is None or (not expired and secret.expiration is not None
                          and secret.expiration <= utcnow()):
        return None
    return secret


def check_ref(session: Session, settings: Settings, project_id: str | None, ref: str,
              need: Need) -> None:
    """400 unless ``ref`` names a live secret (or certificate container) of ``project_id``
    that holds ``need``."""
    box = SecretBox.for_settings(settings)
    try:
        material = _material(session, box, ref, project_id=project_id, need=need)
        material.check(need)
    except _Unusable as exc:
        raise _refused(ref, str(exc)) from None
    except UnsealError:
        raise _refused(ref, "the secret cannot be decrypted with this deployment's key"
                       ) from None
    except TlsMaterialError as exc:
        raise _refused(ref, f"{exc}; {need.value} is needed here") from None


def resolver(db: Database, box: SecretBox) -> Callable[[str], bytes]:
    """``ref -> PEM bundle`` for the amphora driver (service access: any project). Failures
    are StepFailed naming the reference and the reason, never the content."""

    def resolve(ref: str) -> bytes:
        try:
            with db.read() as session:
                return _material(session, box, ref, service=True).pem()
        except (_Unusable, UnsealError, TlsMaterialError) as exc:
            raise StepFailed(f"Could not retrieve certificate {ref}: {exc}.") from None

    return resolve


class _Unusable(Exception):
    """The reference names nothing usable; the message says why (never the content)."""


def _material(session: Session, box: SecretBox, ref: str, *, project_id: str | None = None,
              service: bool = False, need: Need | None = None) -> TlsMaterial:
    """The TLS material ``ref`` names: only ``project_id``'s, unless for the ``service``
    (the worker, which reads for any project)."""
    container_id = container_id_of(ref)
    if container_id is not None:
        return _container_material(session, box, container_id, project_id, service, need)
    secret_id = secret_id_of(ref)
    if secret_id is None:
        raise _Unusable("not a secret reference (<base>/v1/secrets/<uuid> or a uuid) nor a "
                        "container reference (<base>/v1/containers/<uuid>)")
    secret = live_secret(session, secret_id)
    # A secret of another project is reported exactly like a missing one.
    if secret is None or (not service and secret.project_id != project_id):
        raise _Unusable("the secret was deleted or has expired" if service
                        else "no such secret in this project")
    return read_secret(box.open(secret.payload, bound_to=secret.id))


CONTAINER_PARTS = ("certificate", "private_key", "intermediates", "private_key_passphrase")


def _container_material(session: Session, box: SecretBox, container_id: str,
                        project_id: str | None, service: bool,
                        need: Need | None) -> TlsMaterial:
    container = session.get(m.SecretContainer, container_id)
    if container is None or (not service and container.project_id != project_id):
        raise _Unusable("the container was deleted" if service
                        else "no such container in this project")
    if container.type != "certificate":
        raise _Unusable(f"a {container.type} container cannot be used here; store a "
                        "certificate container (or one PKCS12 or PEM secret)")
    if need is not None and need not in (Need.SERVER_CERT, Need.CLIENT_CERT):
        raise _Unusable(f"a certificate container holds a certificate and its key; "
                        f"{need.value} is needed here, stored as a secret")
    parts: dict[str, bytes] = {}
    for ref in container.refs:
        secret = live_secret(session, ref.secret_id)
        if secret is None:
            raise _Unusable(f"its {ref.name} secret was deleted or has expired")
        parts[ref.name] = box.open(secret.payload, bound_to=secret.id)
    if "certificate" not in parts:
        raise _Unusable("the container names no certificate")
    return read_certificate_container(parts["certificate"], parts.get("private_key"),
                                      parts.get("intermediates"),
                                      parts.get("private_key_passphrase"))


# ---- the store -------------------------------------------------------------------------------


def text_field(body: Mapping[str, Any], key: str, limit: int = 255) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"Invalid input for field/attribute {key}: a string of at most "
                           f"{limit} characters is required.")
    return value


def _payload(body: Mapping[str, Any]) -> tuple[bytes, str]:
    """The payload's bytes and its content type, as the body describes them."""
    payload = body.get("payload")
    if not isinstance(payload, str) or not payload:
        raise InvalidInput("A payload (a non-empty string) is required: this store keeps "
                           "no secret without one.")
    content_type = (text_field(body, "payload_content_type") or "").strip().lower()
    encoding = (text_field(body, "payload_content_encoding") or "").strip().lower() or None
    if content_type.replace(" ", "") in (TEXT, f"{TEXT};charset=utf-8"):
        if encoding is not None:
            raise InvalidInput("payload_content_encoding is only for binary content types; "
                               "a text/plain payload is sent as it is.")
        data, content_type = payload.encode("utf-8"), TEXT
    elif content_type in BINARY_TYPES:
        if encoding != "base64":
            raise InvalidInput(f"A {content_type} payload needs payload_content_encoding "
                               "'base64'.")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("The payload is not valid base64.") from None
    else:
        raise InvalidInput("payload_content_type must be one of "
                           f"{', '.join((TEXT, *BINARY_TYPES))}.")
    if not data or len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"The payload must hold 1 to {MAX_PAYLOAD_BYTES} bytes.")
    return data, content_type


def _expiration(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("Invalid input for field/attribute expiration: an ISO 8601 date "
                           "and time is required.") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if when <= utcnow():
        raise InvalidInput("The expiration date of a secret must be in the future.")
    return when


def storing_project(ctx: RequestContext, body: Mapping[str, Any], kind: str,
                    keys: frozenset[str]) -> str:
    """The project a new secret or container is stored for, once the caller may store and
    the body holds nothing unknown."""
    project_id = ctx.project_id
    if project_id is None:
        raise InvalidInput(f"A {kind} belongs to a project: the request names none.")
    authorize(ctx, "secret:post", project_id)
    unknown = sorted(set(body) - keys)
    if unknown:
        raise InvalidInput(f"Unknown attribute for {kind}: {unknown[0]}")
    return project_id


def store(deps: Deps, ctx: RequestContext, body: Mapping[str, Any]) -> m.Secret:
    project_id = storing_project(ctx, body, "secret", BODY_KEYS)
    data, content_type = _payload(body)
    secret_type = text_field(body, "secret_type") or "opaque"
    if secret_type not in SECRET_TYPES:
        raise InvalidInput(f"secret_type must be one of {', '.join(SECRET_TYPES)}.")
    bit_length = body.get("bit_length")
    if bit_length is not None and (isinstance(bit_length, bool)
                                   or not isinstance(bit_length, int) or bit_length < 1):
        raise InvalidInput("Invalid input for field/attribute bit_length: a positive "
                           "integer is required.")
    secret_id = new_id()
    secret = m.Secret(
        id=secret_id, project_id=project_id, creator_id=ctx.user, name=text_field(body, "name"),
        secret_type=secret_type, content_type=content_type,
        algorithm=text_field(body, "algorithm"), bit_length=bit_length,
        mode=text_field(body, "mode"),
        expiration=_expiration(body.get("expiration")),
        payload=SecretBox.for_settings(deps.settings).seal(data, bound_to=secret_id))
    with deps.db.write() as session:
        session.add(secret)
    return secret


def _visible(session: Session, ctx: RequestContext, secret_id: str, action: str,
             *, expired: bool = False) -> m.Secret:
    found = secret_id_of(secret_id)
    secret = live_secret(session, found, expired=expired) if found else None
    if secret is None:
        raise NotFound(resource="Secret", id=secret_id)
    authorize(ctx, action, secret.project_id)
    return secret


def get(deps: Deps, ctx: RequestContext, secret_id: str) -> m.Secret:
    with deps.db.read() as session:
        return _visible(session, ctx, secret_id, "secret:get_one")


def payload(deps: Deps, ctx: RequestContext, secret_id: str) -> tuple[bytes, str]:
    """The payload as stored, and its content type."""
    with deps.db.read() as session:
        secret = _visible(session, ctx, secret_id, "secret:get_one")
        sealed, content_type = secret.payload, secret.content_type
    try:
        return SecretBox.for_settings(deps.settings).open(sealed, bound_to=secret.id), \
            content_type
    except UnsealError as exc:
        raise Conflict(f"Secret {secret.id} cannot be decrypted: {exc}.") from None


def int_param(params: Mapping[str, list[str]], key: str, default: int, high: int) -> int:
    raw = (params.get(key) or [str(default)])[-1]
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{key} must be an integer.") from None
    return max(0, min(value, high))


def list_(deps: Deps, ctx: RequestContext,
          params: Mapping[str, list[str]]) -> tuple[list[m.Secret], int, int, int]:
    """The caller's project's live secrets, filtered by ``name`` and ``secret_type``; the
    page, the total, and the limit and offset used."""
    authorize(ctx, "secret:get_all", ctx.project_id)
    limit = int_param(params, "limit", 10, MAX_LIST_LIMIT)
    offset = int_param(params, "offset", 0, 2**31)
    where = [m.Secret.project_id == ctx.project_id,
             sa.or_(m.Secret.expiration.is_(None), m.Secret.expiration > utcnow())]
    for key, column in (("name", m.Secret.name), ("secret_type", m.Secret.secret_type)):
        if params.get(key):
            where.append(column == params[key][-1])
    with deps.db.read() as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(m.Secret).where(*where))
        items = list(session.scalars(
            sa.select(m.Secret).where(*where)
            .order_by(m.Secret.created_at, m.Secret.id).limit(limit).offset(offset)))
    return items, int(total or 0), limit, offset


def referencing(session: Session, path: str, object_id: str) -> str | None:
    """A live listener or pool whose TLS references name ``<path>/<object_id>`` (path
    ``secrets`` or ``containers``; a bare id also names a secret), as "<kind> <id>"."""

    def names(column: Any) -> Any:
        by_url = sa.func.lower(column).like(f"%/v1/{path}/{object_id}")
        return sa.or_(sa.func.lower(column) == object_id, by_url) if path == "secrets" \
            else by_url

    live_listener = m.Listener.provisioning_status != ProvisioningStatus.DELETED
    live_pool = m.Pool.provisioning_status != ProvisioningStatus.DELETED
    queries = [
        ("listener", sa.select(m.Listener.id).where(live_listener, sa.or_(
            names(m.Listener.tls_certificate_id), names(m.Listener.client_ca_tls_certificate_id),
            names(m.Listener.client_crl_container_id)))),
        ("listener", sa.select(m.Listener.id).join(m.SNI, m.SNI.listener_id == m.Listener.id)
         .where(live_listener, names(m.SNI.tls_container_id))),
        ("pool", sa.select(m.Pool.id).where(live_pool, sa.or_(
            names(m.Pool.tls_certificate_id), names(m.Pool.ca_tls_certificate_id),
            names(m.Pool.crl_container_id)))),
    ]
    for kind, query in queries:
        found = session.scalars(query.limit(1)).first()
        if found is not None:
            return f"{kind} {found}"
    return None


def delete(deps: Deps, ctx: RequestContext, secret_id: str) -> None:
    def work(session: Session) -> None:
        secret = _visible(session, ctx, secret_id, "secret:delete", expired=True)
        user = referencing(session, "secrets", secret.id)
        if user is None:
            holder = session.scalars(sa.select(m.SecretContainerRef.container_id).where(
                m.SecretContainerRef.secret_id == secret.id).limit(1)).first()
            user = None if holder is None else f"container {holder}"
        if user is not None:
            raise Conflict(f"Secret {secret.id} is in use by {user}: change or delete that "
                           "first.")
        session.delete(secret)

    deps.db.write_retrying(work)
