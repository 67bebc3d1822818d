"""The operator's catalog: providers and their capabilities, flavor profiles and flavors,
availability zone profiles and availability zones.

None of these belong to a project and none goes through the worker: a change is one short
transaction. Profiles hold provider-specific JSON that is checked against what the provider
honours when it is written, so a bad key fails at the operator's request, not at the next
load balancer create.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Session

from statera.db import models as m
from statera.domain.enums import ProvisioningStatus, Topology
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import listing
from statera.services.common import authorize, new_id
from statera.services.context import RequestContext
from statera.services.deps import Deps

AMPHORA_PROVIDERS = frozenset({"amphora", "octavia"})


# ---- providers and capabilities -------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    # Returns why a value is refused, or None when it is fine.
    check: Callable[[Deps, Any], str | None]


def _topology(_deps: Deps, value: Any) -> str | None:
    if value not in (Topology.SINGLE, Topology.ACTIVE_STANDBY):
        return "must be one of SINGLE, ACTIVE_STANDBY"
    return None


def _short_string(_deps: Deps, value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 255:
        return "must be a non-empty string of at most 255 characters"
    return None


def _vip_networks(deps: Deps, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of network ids"
    unknown = [v for v in value if deps.networks.by_network(v) is None]
    if unknown:
        return f"network {unknown[0]} could not be found"
    return None


FLAVOR_CAPABILITIES = (
    Capability(
        "loadbalancer_topology",
        "The load balancer topology: SINGLE (one amphora) or ACTIVE_STANDBY (two "
        "amphorae sharing the VIP through VRRP).",
        _topology,
    ),
)
AVAILABILITY_ZONE_CAPABILITIES = (
    Capability("compute_zone", "The zone the compute driver places amphorae in.", _short_string),
    Capability("management_network", "The network amphorae are managed through.", _short_string),
    Capability(
        "valid_vip_networks",
        "The networks a load balancer in this zone may take its VIP from.",
        _vip_networks,
    ),
)


def _capabilities_of(provider: str, kind: str) -> tuple[Capability, ...]:
    if provider not in AMPHORA_PROVIDERS:
        return ()
    return FLAVOR_CAPABILITIES if kind == "flavor" else AVAILABILITY_ZONE_CAPABILITIES


def require_provider(deps: Deps, provider: str) -> None:
    if provider not in deps.settings.api_settings.enabled_provider_drivers:
        raise InvalidInput(f"Provider '{provider}' is not enabled.")


def _filter_dicts(
    items: list[dict[str, str]], params: dict[str, list[str]]
) -> list[dict[str, str]]:
    """Filters of the provider lists: exact match on name and description."""
    for key, values in params.items():
        if key in listing.CONTROL_PARAMS:
            continue
        if key not in ("name", "description"):
            raise InvalidInput(f"Invalid filter argument: {key}")
        items = [i for i in items if i[key] in values]
    return items


def list_providers(
    deps: Deps, ctx: RequestContext, params: dict[str, list[str]]
) -> list[dict[str, str]]:
    authorize(ctx, "provider:get_all", None)
    enabled = deps.settings.api_settings.enabled_provider_drivers
    items = [{"name": name, "description": text} for name, text in enabled.items()]
    return _filter_dicts(items, params)


def list_capabilities(
    deps: Deps, ctx: RequestContext, provider: str, kind: str, params: dict[str, list[str]]
) -> list[dict[str, str]]:
    """``kind`` is "flavor" or "availability_zone"."""
    action = "provider-flavor:get_all" if kind == "flavor" else "provider-availability-zone:get_all"
    authorize(ctx, action, None)
    require_provider(deps, provider)
    items = [
        {"name": c.name, "description": c.description} for c in _capabilities_of(provider, kind)
    ]
    return _filter_dicts(items, params)


def check_profile_data(deps: Deps, provider: str, kind: str, raw: str) -> dict[str, Any]:
    """Parse a profile's JSON and check every key against what the provider honours."""
    field = "flavor_data" if kind == "flavor" else "availability_zone_data"
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidInput(f"{raw} is not a valid option for {field}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{field} must be a JSON object.")
    require_provider(deps, provider)
    known = {c.name: c for c in _capabilities_of(provider, kind)}
    for key, value in data.items():
        cap = known.get(key)
        if cap is None:
            raise InvalidInput(
                f"Provider '{provider}' does not support a requested option: "
                f"{key} is not a supported {field} key."
            )
        problem = cap.check(deps, value)
        if problem:
            raise InvalidInput(
                f"Provider '{provider}' does not support a requested option: {key} {problem}."
            )
    return data


# ---- profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileKind:
    model: Any
    data_attr: str
    policy: str
    capability_kind: str
    display: str
    # The catalog entries pointing at a profile, through this column.
    user_fk: Any


FLAVOR_PROFILE = ProfileKind(
    m.FlavorProfile,
    "flavor_data",
    "flavor-profile",
    "flavor",
    "Flavor profile",
    m.Flavor.flavor_profile_id,
)
AZ_PROFILE = ProfileKind(
    m.AvailabilityZoneProfile,
    "availability_zone_data",
    "availability-zone-profile",
    "availability_zone",
    "Availability zone profile",
    m.AvailabilityZone.availability_zone_profile_id,
)


def _profile_listing(kind: ProfileKind) -> listing.Listing:
    model = kind.model
    return listing.Listing(
        model=model,
        taggable=False,
        default_sort=(("id", "asc"),),
        columns={
            "id": model.id,
            "name": model.name,
            "provider_name": model.provider_name,
            kind.data_attr: getattr(model, kind.data_attr),
        },
    )


PROFILE_LISTINGS = {kind.policy: _profile_listing(kind) for kind in (FLAVOR_PROFILE, AZ_PROFILE)}


def _get(session: Session, model: Any, key: str, display: str, *, for_update: bool = False) -> Any:
    obj = session.get(model, key, with_for_update=for_update)
    if obj is None:
        raise NotFound(resource=display, id=key)
    return obj


def _not_null(changes: dict[str, Any], *fields: str) -> None:
    for name in fields:
        if name in changes and changes[name] is None:
            raise InvalidInput(f"None is not a valid option for {name}")


def _in_use(session: Session, column: Any, key: str) -> bool:
    return bool(session.scalar(sa.select(sa.func.count()).where(column == key)))


def list_profiles(
    deps: Deps, ctx: RequestContext, kind: ProfileKind, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    authorize(ctx, f"{kind.policy}:get_all", None)
    spec = PROFILE_LISTINGS[kind.policy]
    with deps.db.read() as session:
        stmt = listing.apply_filters(sa.select(kind.model), spec, params)
        return listing.paginate(
            session,
            stmt,
            spec,
            params,
            base_url=base_url,
            max_limit=deps.settings.api_settings.pagination_max_limit,
        )


def get_profile(deps: Deps, ctx: RequestContext, kind: ProfileKind, profile_id: str) -> Any:
    authorize(ctx, f"{kind.policy}:get_one", None)
    with deps.db.read() as session:
        return _get(session, kind.model, profile_id, kind.display)


def create_profile(deps: Deps, ctx: RequestContext, kind: ProfileKind, data: dict[str, Any]) -> Any:
    authorize(ctx, f"{kind.policy}:post", None)
    check_profile_data(deps, data["provider_name"], kind.capability_kind, data[kind.data_attr])
    profile = kind.model(
        id=new_id(),
        name=data["name"],
        provider_name=data["provider_name"],
        **{kind.data_attr: data[kind.data_attr]},
    )

    def work(session: Session) -> None:
        session.add(profile)

    deps.db.write_retrying(work)
    return profile


def update_profile(
    deps: Deps, ctx: RequestContext, kind: ProfileKind, profile_id: str, changes: dict[str, Any]
) -> Any:
    authorize(ctx, f"{kind.policy}:put", None)
    _not_null(changes, "name", "provider_name", kind.data_attr)

    def work(session: Session) -> Any:
        profile = _get(session, kind.model, profile_id, kind.display, for_update=True)
        if ("provider_name" in changes or kind.data_attr in changes) and _in_use(
            session, kind.user_fk, profile_id
        ):
            # Entries already point at it; changing what it means would change them too.
            raise Conflict(f"{kind.display} {profile_id} is in use and cannot be modified.")
        provider = changes.get("provider_name", profile.provider_name)
        raw = changes.get(kind.data_attr, getattr(profile, kind.data_attr))
        if "provider_name" in changes or kind.data_attr in changes:
            check_profile_data(deps, provider, kind.capability_kind, raw)
        for key in ("name", "provider_name", kind.data_attr):
            if key in changes:
                setattr(profile, key, changes[key])
        return profile

    return deps.db.write_retrying(work)


def delete_profile(deps: Deps, ctx: RequestContext, kind: ProfileKind, profile_id: str) -> None:
    authorize(ctx, f"{kind.policy}:delete", None)

    def work(session: Session) -> None:
        profile = _get(session, kind.model, profile_id, kind.display, for_update=True)
        if _in_use(session, kind.user_fk, profile_id):
            raise Conflict(f"{kind.display} {profile_id} is in use and cannot be modified.")
        session.delete(profile)

    deps.db.write_retrying(work)


# ---- flavors and availability zones -----------------------------------------------------------


class _ZoneByName(m.Base):
    """The availability_zone table mapped once more, with ``id`` naming its key (the name):
    the listing helper keys markers and page links on ``id``."""

    __table__ = m.AvailabilityZone.__table__
    id = orm.synonym("name")


@dataclass(frozen=True)
class EntryKind:
    model: Any
    policy: str
    display: str
    profile_attr: str
    profile_kind: ProfileKind
    # The load balancer column naming the entry: in use while a live LB names it.
    lb_column: Any
    listing: listing.Listing


FLAVOR = EntryKind(
    m.Flavor,
    "flavor",
    "Flavor",
    "flavor_profile_id",
    FLAVOR_PROFILE,
    m.LoadBalancer.flavor_id,
    listing.Listing(
        model=m.Flavor,
        taggable=False,
        default_sort=(("id", "asc"),),
        columns={
            "id": m.Flavor.id,
            "name": m.Flavor.name,
            "description": m.Flavor.description,
            "enabled": m.Flavor.enabled,
            "flavor_profile_id": m.Flavor.flavor_profile_id,
        },
    ),
)
AVAILABILITY_ZONE = EntryKind(
    m.AvailabilityZone,
    "availability-zone",
    "Availability Zone",
    "availability_zone_profile_id",
    AZ_PROFILE,
    m.LoadBalancer.availability_zone,
    listing.Listing(
        model=_ZoneByName,
        taggable=False,
        default_sort=(("name", "asc"),),
        columns={
            key: m.AvailabilityZone.__table__.c[key]
            for key in ("name", "description", "enabled", "availability_zone_profile_id")
        },
    ),
)


def _a(noun: str) -> str:
    return ("An " if noun[0] in "aeiou" else "A ") + noun


def list_entries(
    deps: Deps, ctx: RequestContext, kind: EntryKind, params: dict[str, list[str]], base_url: str
) -> listing.Page:
    authorize(ctx, f"{kind.policy}:get_all", None)
    spec = kind.listing
    with deps.db.read() as session:
        stmt = listing.apply_filters(sa.select(spec.model), spec, params)
        return listing.paginate(
            session,
            stmt,
            spec,
            params,
            base_url=base_url,
            max_limit=deps.settings.api_settings.pagination_max_limit,
        )


def get_entry(deps: Deps, ctx: RequestContext, kind: EntryKind, key: str) -> Any:
    authorize(ctx, f"{kind.policy}:get_one", None)
    with deps.db.read() as session:
        return _get(session, kind.model, key, kind.display)


def create_entry(deps: Deps, ctx: RequestContext, kind: EntryKind, data: dict[str, Any]) -> Any:
    authorize(ctx, f"{kind.policy}:post", None)
    what = _a(kind.display.lower())
    values = {k: v for k, v in data.items() if v is not None or k == "description"}
    values.setdefault("enabled", True)
    if kind is FLAVOR:
        values["id"] = new_id()

    def work(session: Session) -> Any:
        profile_id = values[kind.profile_attr]
        # Locked so that the profile cannot change or go while an entry starts using it.
        if session.get(kind.profile_kind.model, profile_id, with_for_update=True) is None:
            raise InvalidInput(f"{profile_id} is not a valid option for {kind.profile_attr}")
        taken = session.scalar(
            sa.select(sa.func.count())
            .select_from(kind.model)
            .where(kind.model.name == values["name"])
        )
        if taken:
            raise Conflict(f"{what} named {values['name']} already exists.")
        entry = kind.model(**values)
        session.add(entry)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(f"{what} named {values['name']} already exists.") from None
        return entry

    return deps.db.write_retrying(work)


def update_entry(
    deps: Deps, ctx: RequestContext, kind: EntryKind, key: str, changes: dict[str, Any]
) -> Any:
    authorize(ctx, f"{kind.policy}:put", None)
    _not_null(changes, "name", "enabled")
    what = _a(kind.display.lower())

    def work(session: Session) -> Any:
        entry = _get(session, kind.model, key, kind.display)
        if "name" in changes and changes["name"] != entry.name:
            taken = session.scalar(
                sa.select(sa.func.count())
                .select_from(kind.model)
                .where(kind.model.name == changes["name"])
            )
            if taken:
                raise Conflict(f"{what} named {changes['name']} already exists.")
        for attr, value in changes.items():
            setattr(entry, attr, value)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(f"{what} named {changes.get('name')} already exists.") from None
        return entry

    return deps.db.write_retrying(work)


def delete_entry(deps: Deps, ctx: RequestContext, kind: EntryKind, key: str) -> None:
    authorize(ctx, f"{kind.policy}:delete", None)

    def work(session: Session) -> None:
        entry = _get(session, kind.model, key, kind.display)
        live = session.scalar(
            sa.select(sa.func.count())
            .select_from(m.LoadBalancer)
            .where(
                kind.lb_column == key,
                m.LoadBalancer.provisioning_status != ProvisioningStatus.DELETED,
            )
        )
        if live:
            raise Conflict(f"{kind.display} {key} is in use and cannot be modified.")
        session.delete(entry)

    deps.db.write_retrying(work)
