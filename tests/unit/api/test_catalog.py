"""Providers, flavor profiles, flavors, availability zone profiles and availability zones."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statera.services import users
from tests.conftest import Api, build_api

V = "/v2/lbaas"
MISSING = "5a0b7c5e-0000-4000-8000-000000000000"


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _fault(api: Api, method: str, path: str, status: int, body: Any = None) -> str:
    r = api.client.request(method, path, json=body, headers=api.headers)
    assert r.status_code == status, r.text
    return str(r.json()["faultstring"])


def _flavor_profile(api: Api, data: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    body = {
        "name": "fp",
        "provider_name": "amphora",
        "flavor_data": json.dumps(
            data if data is not None else {"loadbalancer_topology": "SINGLE"}
        ),
    }
    body.update(kw)
    return api.post(f"{V}/flavorprofiles", {"flavorprofile": body})["flavorprofile"]


def _flavor(api: Api, profile_id: str, **kw: Any) -> dict[str, Any]:
    body = {"name": "small", "flavor_profile_id": profile_id}
    body.update(kw)
    return api.post(f"{V}/flavors", {"flavor": body})["flavor"]


def _az_profile(api: Api, data: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {
        "name": "azp",
        "provider_name": "amphora",
        "availability_zone_data": json.dumps(
            data if data is not None else {"compute_zone": "rack1"}
        ),
    }
    return api.post(f"{V}/availabilityzoneprofiles", {"availability_zone_profile": body})[
        "availability_zone_profile"
    ]


# ---- providers ------------------------------------------------------------------------------


def test_providers_come_from_config(api: Api) -> None:
    providers = api.get(f"{V}/providers")["providers"]
    assert {p["name"] for p in providers} == {"amphora", "octavia"}
    assert all(p["description"] for p in providers)
    only = api.get(f"{V}/providers", params={"name": "amphora", "fields": "name"})
    assert only == {"providers": [{"name": "amphora"}]}


def test_provider_capabilities(api: Api) -> None:
    caps = api.get(f"{V}/providers/amphora/flavor_capabilities")["flavor_capabilities"]
    assert "loadbalancer_topology" in {c["name"] for c in caps}
    assert all(c["description"] for c in caps)
    zone = api.get(f"{V}/providers/octavia/availability_zone_capabilities")
    names = {c["name"] for c in zone["availability_zone_capabilities"]}
    assert {"compute_zone", "management_network", "valid_vip_networks"} <= names
    one = api.get(
        f"{V}/providers/amphora/availability_zone_capabilities",
        params={"name": "compute_zone", "fields": "name"},
    )
    assert one == {"availability_zone_capabilities": [{"name": "compute_zone"}]}
    msg = _fault(api, "GET", f"{V}/providers/f5/flavor_capabilities", 400)
    assert msg == "Provider 'f5' is not enabled."
    _fault(api, "GET", f"{V}/providers/amphora/flavor_capabilities?colour=red", 400)


# ---- flavor profiles ------------------------------------------------------------------------


def test_flavor_profile_crud(api: Api) -> None:
    fp = _flavor_profile(api)
    assert fp["provider_name"] == "amphora"
    assert json.loads(fp["flavor_data"]) == {"loadbalancer_topology": "SINGLE"}
    assert api.get(f"{V}/flavorprofiles/{fp['id']}")["flavorprofile"] == fp
    listed = api.get(f"{V}/flavorprofiles")
    assert listed == {"flavorprofiles": [fp], "flavorprofiles_links": []}
    new_data = json.dumps({"loadbalancer_topology": "ACTIVE_STANDBY"})
    updated = api.put(
        f"{V}/flavorprofiles/{fp['id']}", {"flavorprofile": {"name": "ha", "flavor_data": new_data}}
    )
    assert updated["flavorprofile"]["name"] == "ha"
    assert updated["flavorprofile"]["flavor_data"] == new_data
    api.delete(f"{V}/flavorprofiles/{fp['id']}")
    _fault(api, "GET", f"{V}/flavorprofiles/{fp['id']}", 404)
    _fault(api, "DELETE", f"{V}/flavorprofiles/{fp['id']}", 404)
    _fault(api, "PUT", f"{V}/flavorprofiles/{fp['id']}", 404, {"flavorprofile": {"name": "x"}})


def test_flavor_profile_data_is_checked(api: Api) -> None:
    path = f"{V}/flavorprofiles"

    def refused(data: str, provider: str = "amphora") -> str:
        body = {"flavorprofile": {"name": "x", "provider_name": provider, "flavor_data": data}}
        return _fault(api, "POST", path, 400, body)

    assert "not a valid option for flavor_data" in refused("{not json")
    assert "JSON object" in refused("[1, 2]")
    assert "loadbalancer_topology" in refused('{"loadbalancer_topology": "TRIPLE"}')
    assert "sriov_vip" in refused('{"sriov_vip": true}')
    assert refused("{}", provider="f5") == "Provider 'f5' is not enabled."
    assert "flavor_data" in refused("x" * 4097)
    _fault(api, "POST", path, 400, {"flavorprofile": {"name": "x", "provider_name": "amphora"}})
    _fault(
        api,
        "POST",
        path,
        400,
        {
            "flavorprofile": {
                "name": "x",
                "provider_name": "amphora",
                "flavor_data": {"loadbalancer_topology": "SINGLE"},
            }
        },
    )
    # The empty object is fine for any enabled provider; "octavia" is the amphora driver too.
    _flavor_profile(api, {}, provider_name="octavia")


def test_flavor_profile_update_checks(api: Api) -> None:
    fp = _flavor_profile(api)
    path = f"{V}/flavorprofiles/{fp['id']}"
    _fault(api, "PUT", path, 400, {"flavorprofile": {"flavor_data": '{"nope": 1}'}})
    _fault(api, "PUT", path, 400, {"flavorprofile": {"provider_name": "f5"}})
    _fault(api, "PUT", path, 400, {"flavorprofile": {"name": None}})
    _fault(api, "PUT", path, 400, {"flavorprofile": {"id": MISSING}})
    # In use by a flavor: the name may change, what it means may not; nor may it go.
    _flavor(api, fp["id"])
    api.put(path, {"flavorprofile": {"name": "renamed"}})
    msg = _fault(api, "PUT", path, 409, {"flavorprofile": {"flavor_data": "{}"}})
    assert msg == f"Flavor profile {fp['id']} is in use and cannot be modified."
    _fault(api, "DELETE", path, 409)


# ---- flavors --------------------------------------------------------------------------------


def test_flavor_crud(api: Api) -> None:
    fp = _flavor_profile(api)
    flavor = _flavor(api, fp["id"], description="one amphora")
    assert flavor == {
        "id": flavor["id"],
        "name": "small",
        "description": "one amphora",
        "enabled": True,
        "flavor_profile_id": fp["id"],
    }
    assert api.get(f"{V}/flavors/{flavor['id']}")["flavor"] == flavor
    path = f"{V}/flavors/{flavor['id']}"
    updated = api.put(path, {"flavor": {"name": "tiny", "enabled": False, "description": None}})[
        "flavor"
    ]
    assert (updated["name"], updated["enabled"], updated["description"]) == ("tiny", False, None)
    _fault(api, "PUT", path, 400, {"flavor": {"flavor_profile_id": fp["id"]}})
    _fault(api, "PUT", path, 400, {"flavor": {"enabled": None}})
    api.delete(path)
    _fault(api, "GET", path, 404)
    _fault(api, "DELETE", path, 404)


def test_flavor_errors(api: Api) -> None:
    fp = _flavor_profile(api)
    _flavor(api, fp["id"])
    msg = _fault(
        api,
        "POST",
        f"{V}/flavors",
        409,
        {"flavor": {"name": "small", "flavor_profile_id": fp["id"]}},
    )
    assert "small" in msg
    msg = _fault(
        api,
        "POST",
        f"{V}/flavors",
        400,
        {"flavor": {"name": "other", "flavor_profile_id": MISSING}},
    )
    assert MISSING in msg
    _fault(api, "POST", f"{V}/flavors", 400, {"flavor": {"name": "x"}})
    _fault(
        api,
        "POST",
        f"{V}/flavors",
        400,
        {"flavor": {"name": "x", "flavor_profile_id": "not-a-uuid"}},
    )
    other = _flavor(api, fp["id"], name="other")
    _fault(api, "PUT", f"{V}/flavors/{other['id']}", 409, {"flavor": {"name": "small"}})


def test_flavor_in_use_by_a_load_balancer_cannot_go(api: Api) -> None:
    fp = _flavor_profile(api)
    flavor = _flavor(api, fp["id"])
    lb = api.make_lb(flavor_id=flavor["id"])
    _fault(api, "DELETE", f"{V}/flavors/{flavor['id']}", 409)
    api.delete(f"{V}/loadbalancers/{lb['id']}")
    api.settle()
    api.delete(f"{V}/flavors/{flavor['id']}")


def test_catalog_lists_filter_sort_page_and_trim(api: Api) -> None:
    fp = _flavor_profile(api)
    ids = {
        name: _flavor(api, fp["id"], name=name, enabled=name != "b")["id"]
        for name in ("c", "a", "b")
    }
    names = [f["name"] for f in api.get(f"{V}/flavors", params={"sort": "name:asc"})["flavors"]]
    assert names == ["a", "b", "c"]
    off = api.get(f"{V}/flavors", params={"enabled": "false", "fields": "name"})["flavors"]
    assert off == [{"name": "b"}]
    page = api.get(f"{V}/flavors", params={"limit": 2, "sort": "name:desc"})
    assert [f["name"] for f in page["flavors"]] == ["c", "b"]
    assert [link["rel"] for link in page["flavors_links"]] == ["next"]
    rest = api.get(f"{V}/flavors", params={"limit": 2, "sort": "name:desc", "marker": ids["b"]})
    assert [f["name"] for f in rest["flavors"]] == ["a"]
    _fault(api, "GET", f"{V}/flavors?sort=colour:asc", 400)
    _fault(api, "GET", f"{V}/flavors?colour=red", 400)
    _fault(api, "GET", f"{V}/flavorprofiles?tags=x&colour=red", 400)


# ---- availability zone profiles and zones ---------------------------------------------------


def test_availability_zone_profile_crud_and_checks(api: Api) -> None:
    net = api.deps.settings.networks[0].id
    azp = _az_profile(
        api, {"compute_zone": "rack1", "valid_vip_networks": [net], "management_network": "mgmt"}
    )
    path = f"{V}/availabilityzoneprofiles/{azp['id']}"
    assert api.get(path)["availability_zone_profile"] == azp
    listed = api.get(f"{V}/availabilityzoneprofiles")
    assert listed["availability_zone_profiles"] == [azp]
    assert listed["availability_zone_profiles_links"] == []
    updated = api.put(path, {"availability_zone_profile": {"name": "rack-one"}})
    assert updated["availability_zone_profile"]["name"] == "rack-one"

    def refused(data: Any) -> str:
        body = {
            "availability_zone_profile": {
                "name": "x",
                "provider_name": "amphora",
                "availability_zone_data": json.dumps(data),
            }
        }
        return _fault(api, "POST", f"{V}/availabilityzoneprofiles", 400, body)

    assert "volume_zone" in refused({"volume_zone": "z"})
    assert "compute_zone" in refused({"compute_zone": 5})
    assert MISSING in refused({"valid_vip_networks": [MISSING]})
    assert "valid_vip_networks" in refused({"valid_vip_networks": "net"})
    api.delete(path)
    _fault(api, "GET", path, 404)


def test_availability_zone_crud(api: Api) -> None:
    azp = _az_profile(api)
    body = {"name": "zone-1", "description": "first", "availability_zone_profile_id": azp["id"]}
    az = api.post(f"{V}/availabilityzones", {"availability_zone": body})["availability_zone"]
    assert az == {
        "name": "zone-1",
        "description": "first",
        "enabled": True,
        "availability_zone_profile_id": azp["id"],
    }
    path = f"{V}/availabilityzones/zone-1"
    assert api.get(path)["availability_zone"] == az
    updated = api.put(path, {"availability_zone": {"enabled": False, "description": "x"}})
    assert updated["availability_zone"]["enabled"] is False
    _fault(api, "PUT", path, 400, {"availability_zone": {"name": "zone-2"}})
    _fault(api, "POST", f"{V}/availabilityzones", 409, {"availability_zone": body})
    bad = dict(body, name="zone-9", availability_zone_profile_id=MISSING)
    _fault(api, "POST", f"{V}/availabilityzones", 400, {"availability_zone": bad})
    # The profile is in use now.
    _fault(api, "DELETE", f"{V}/availabilityzoneprofiles/{azp['id']}", 409)
    _fault(
        api,
        "PUT",
        f"{V}/availabilityzoneprofiles/{azp['id']}",
        409,
        {"availability_zone_profile": {"availability_zone_data": "{}"}},
    )
    api.delete(path)
    _fault(api, "GET", path, 404)
    api.delete(f"{V}/availabilityzoneprofiles/{azp['id']}")


def test_availability_zones_page_by_name(api: Api) -> None:
    azp = _az_profile(api)
    for name in ("b", "a", "c"):
        api.post(
            f"{V}/availabilityzones",
            {"availability_zone": {"name": name, "availability_zone_profile_id": azp["id"]}},
        )
    first = api.get(f"{V}/availabilityzones", params={"limit": 2})
    assert [z["name"] for z in first["availability_zones"]] == ["a", "b"]
    assert "marker=b" in first["availability_zones_links"][0]["href"]
    rest = api.get(f"{V}/availabilityzones", params={"limit": 2, "marker": "b"})
    assert [z["name"] for z in rest["availability_zones"]] == ["c"]


def test_availability_zone_in_use_by_a_load_balancer_cannot_go(api: Api) -> None:
    azp = _az_profile(api)
    api.post(
        f"{V}/availabilityzones",
        {"availability_zone": {"name": "z1", "availability_zone_profile_id": azp["id"]}},
    )
    api.make_lb(availability_zone="z1")
    _fault(api, "DELETE", f"{V}/availabilityzones/z1", 409)


# ---- who may do what ------------------------------------------------------------------------


@pytest.fixture
def basic_api(tmp_path: Path) -> Iterator[Api]:
    a = build_api(tmp_path, STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    yield a
    a.client.close()
    a.deps.db.dispose()


def test_members_read_the_catalog_admins_change_it(basic_api: Api) -> None:
    a = basic_api
    users.add_user(a.deps.db, "root", "pw-r", "admin-project", ["admin"])
    users.add_user(a.deps.db, "bob", "pw-b", "pb", ["member"])
    root, bob = _basic("root", "pw-r"), _basic("bob", "pw-b")
    c = a.client
    data = json.dumps({"loadbalancer_topology": "SINGLE"})
    fp_body = {"flavorprofile": {"name": "fp", "provider_name": "amphora", "flavor_data": data}}
    assert c.post(f"{V}/flavorprofiles", json=fp_body, headers=bob).status_code == 403
    fp = c.post(f"{V}/flavorprofiles", json=fp_body, headers=root).json()["flavorprofile"]
    flavor_body = {"flavor": {"name": "f", "flavor_profile_id": fp["id"]}}
    assert c.post(f"{V}/flavors", json=flavor_body, headers=bob).status_code == 403
    flavor = c.post(f"{V}/flavors", json=flavor_body, headers=root).json()["flavor"]
    # Members read flavors, AZs and providers ...
    assert c.get(f"{V}/flavors", headers=bob).status_code == 200
    assert c.get(f"{V}/flavors/{flavor['id']}", headers=bob).status_code == 200
    assert c.get(f"{V}/availabilityzones", headers=bob).status_code == 200
    assert c.get(f"{V}/providers", headers=bob).status_code == 200
    # ... but not profiles or capabilities, and change nothing.
    for path in (
        f"{V}/flavorprofiles",
        f"{V}/flavorprofiles/{fp['id']}",
        f"{V}/availabilityzoneprofiles",
        f"{V}/providers/amphora/flavor_capabilities",
        f"{V}/providers/amphora/availability_zone_capabilities",
    ):
        assert c.get(path, headers=bob).status_code == 403, path
    assert (
        c.put(
            f"{V}/flavors/{flavor['id']}", json={"flavor": {"name": "g"}}, headers=bob
        ).status_code
        == 403
    )
    assert c.delete(f"{V}/flavors/{flavor['id']}", headers=bob).status_code == 403
    assert c.delete(f"{V}/flavorprofiles/{fp['id']}", headers=bob).status_code == 403
    az_body = {"availability_zone": {"name": "z", "availability_zone_profile_id": fp["id"]}}
    assert c.post(f"{V}/availabilityzones", json=az_body, headers=bob).status_code == 403
    assert c.get(f"{V}/providers/amphora/flavor_capabilities", headers=root).status_code == 200
