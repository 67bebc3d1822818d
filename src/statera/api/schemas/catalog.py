"""Request models and JSON shapes of the catalog: flavors, flavor profiles, availability
zones and availability zone profiles."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from statera.api.schemas.base import UUID, Body, Name

ProviderName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
# Provider-specific JSON, sent and returned as a string.
ProfileData = Annotated[str, StringConstraints(max_length=4096)]


class FlavorCreate(Body):
    name: Name
    description: Name | None = None
    enabled: bool | None = True
    flavor_profile_id: UUID


class FlavorCreateBody(Body):
    flavor: FlavorCreate


class FlavorUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    enabled: bool | None = None


class FlavorUpdateBody(Body):
    flavor: FlavorUpdate


class FlavorProfileCreate(Body):
    name: Name
    provider_name: ProviderName
    flavor_data: ProfileData


class FlavorProfileCreateBody(Body):
    flavorprofile: FlavorProfileCreate


class FlavorProfileUpdate(Body):
    name: Name | None = None
    provider_name: ProviderName | None = None
    flavor_data: ProfileData | None = None


class FlavorProfileUpdateBody(Body):
    flavorprofile: FlavorProfileUpdate


class AvailabilityZoneCreate(Body):
    name: Name
    description: Name | None = None
    enabled: bool | None = True
    availability_zone_profile_id: UUID


class AvailabilityZoneCreateBody(Body):
    availability_zone: AvailabilityZoneCreate


class AvailabilityZoneUpdate(Body):
    description: Name | None = None
    enabled: bool | None = None


class AvailabilityZoneUpdateBody(Body):
    availability_zone: AvailabilityZoneUpdate


class AvailabilityZoneProfileCreate(Body):
    name: Name
    provider_name: ProviderName
    availability_zone_data: ProfileData


class AvailabilityZoneProfileCreateBody(Body):
    availability_zone_profile: AvailabilityZoneProfileCreate


class AvailabilityZoneProfileUpdate(Body):
    name: Name | None = None
    provider_name: ProviderName | None = None
    availability_zone_data: ProfileData | None = None


class AvailabilityZoneProfileUpdateBody(Body):
    availability_zone_profile: AvailabilityZoneProfileUpdate


def present_flavor(f: Any) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "description": f.description,
        "enabled": f.enabled,
        "flavor_profile_id": f.flavor_profile_id,
    }


def present_flavor_profile(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "provider_name": p.provider_name,
        "flavor_data": p.flavor_data,
    }


def present_availability_zone(z: Any) -> dict[str, Any]:
    return {
        "name": z.name,
        "description": z.description,
        "enabled": z.enabled,
        "availability_zone_profile_id": z.availability_zone_profile_id,
    }


def present_availability_zone_profile(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "provider_name": p.provider_name,
        "availability_zone_data": p.availability_zone_data,
    }
