"""SEC-6: every API route, called under every role, against Octavia's default policy.

The expected table below is written from Octavia's default policy (the Keystone default
roles, ``octavia/policies/keystone_default_roles.py``, together with the legacy
``load-balancer_*`` roles of ``etc/policy/octavia-advanced-rbac-policy.yaml``), not from
``statera.services.policy``:

* ``load-balancer:read``: admin, load-balancer_admin, load-balancer_global_observer, and a
  reader/member/load-balancer_observer/load-balancer_member of the owning project;
* ``load-balancer:write``: admin, load-balancer_admin, a member/load-balancer_member of the
  owning project;
* ``load-balancer:read-quota``: read, plus load-balancer_quota_admin;
  ``write-quota``: admin, load-balancer_admin, load-balancer_quota_admin;
* ``load-balancer:admin``: admin, load-balancer_admin (failover, amphorae, flavor and AZ
  profiles, provider capabilities, flavor/AZ writes);
* lists, flavors, availability zones, providers: any reader of their own project;
* member lists also allow the ``service`` role.

Every route of the OpenAPI document is called by every caller with the ids of objects that
project A owns (fresh ones for destructive calls). "Allowed" is any answer but 401/403;
"denied" is exactly 403; without credentials every route answers 401. Lists under a role that
does not see every project must not show another project's objects.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from statera.db import models as m
from statera.services import users
from statera.services.common import new_id
from tests.conftest import Api, build_api

V = "/v2/lbaas"
AMP = "/v2/octavia/amphorae"
PROJECT_A = "project-a"
PROJECT_B = "project-b"
PROJECT_C = "project-c"  # the project of the global roles: they own nothing of A's
PASSWORD = "rbac-Secret-1"

# ---- callers ----------------------------------------------------------------------------------

ADMIN = "admin"
MEMBER_A = "member_a"
READER_A = "reader_a"
MEMBER_B = "member_b"
OBSERVER_A = "observer_a"
LB_MEMBER_A = "lb_member_a"
GLOBAL_OBSERVER = "global_observer"
QUOTA_ADMIN = "quota_admin"
LB_ADMIN = "lb_admin"
NO_ROLE = "no_role"
SERVICE = "service"

CALLERS: dict[str, tuple[str, list[str]]] = {
    ADMIN: (PROJECT_A, ["admin"]),
    MEMBER_A: (PROJECT_A, ["member"]),
    READER_A: (PROJECT_A, ["reader"]),
    MEMBER_B: (PROJECT_B, ["member"]),
    OBSERVER_A: (PROJECT_A, ["load-balancer_observer"]),
    LB_MEMBER_A: (PROJECT_A, ["load-balancer_member"]),
    GLOBAL_OBSERVER: (PROJECT_C, ["load-balancer_global_observer"]),
    QUOTA_ADMIN: (PROJECT_C, ["load-balancer_quota_admin"]),
    LB_ADMIN: (PROJECT_C, ["load-balancer_admin"]),
    NO_ROLE: (PROJECT_A, []),
    SERVICE: (PROJECT_C, ["service"]),
}

# ---- expected table (Octavia's default policy) -------------------------------------------------

ADMINS = frozenset({ADMIN, LB_ADMIN})
READ = ADMINS | {GLOBAL_OBSERVER, MEMBER_A, READER_A, OBSERVER_A, LB_MEMBER_A}
WRITE = ADMINS | {MEMBER_A, LB_MEMBER_A}
OWN_LIST = READ | {MEMBER_B}  # lists and project-less reads: any reader of their own project
MEMBER_LIST = READ | {SERVICE}
READ_QUOTA = READ | {QUOTA_ADMIN}
OWN_QUOTA = OWN_LIST | {QUOTA_ADMIN}
WRITE_QUOTA = ADMINS | {QUOTA_ADMIN}
# Secrets (the Barbican-shaped store): reads by the owning project or an admin, never by a
# global observer; lists and stores always in the caller's own project.
READ_SECRET = READ - {GLOBAL_OBSERVER}
OWN_SECRETS = ADMINS | {MEMBER_A, READER_A, OBSERVER_A, LB_MEMBER_A, MEMBER_B}
STORE_SECRET = WRITE | {MEMBER_B}
# Who sees every project's objects in a list (read-global / read-quota-global).
GLOBAL = ADMINS | {GLOBAL_OBSERVER}
GLOBAL_QUOTA = GLOBAL | {QUOTA_ADMIN}


def _basic(name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# ---- the objects the calls act on -------------------------------------------------------------


@dataclass
class World:
    """Standing trees of projects A and B, and factories of fresh objects of project A for
    the calls that destroy or replace their target."""

    api: Api
    a: dict[str, str] = field(default_factory=dict)
    b: dict[str, str] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # -- as the administrator --
    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        r = self.api.client.request(method, path, json=body, headers=_basic(ADMIN))
        if status is not None:
            assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        if method != "GET":
            self.api.settle()
        return r.json() if r.content else None

    def n(self) -> int:
        return next(self.counter)

    def build_tree(self, project: str) -> dict[str, str]:
        subnet = self.api.subnet_id
        lb = self.call("POST", f"{V}/loadbalancers", {"loadbalancer": {
            "name": f"lb-{project}", "vip_subnet_id": subnet, "project_id": project}},
            201)["loadbalancer"]
        listener = self.call("POST", f"{V}/listeners", {"listener": {
            "name": f"http-{project}", "loadbalancer_id": lb["id"], "protocol": "HTTP",
            "protocol_port": 80}}, 201)["listener"]
        pool = self.call("POST", f"{V}/pools", {"pool": {
            "name": f"pool-{project}", "listener_id": listener["id"], "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN"}}, 201)["pool"]
        member = self.call("POST", f"{V}/pools/{pool['id']}/members", {"member": {
            "address": "10.210.0.50", "protocol_port": 8080}}, 201)["member"]
        hm = self.call("POST", f"{V}/healthmonitors", {"healthmonitor": {
            "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3,
            "max_retries": 3}}, 201)["healthmonitor"]
        policy = self.call("POST", f"{V}/l7policies", {"l7policy": {
            "listener_id": listener["id"], "action": "REDIRECT_TO_URL",
            "redirect_url": "https://example.com/"}}, 201)["l7policy"]
        rule = self.call("POST", f"{V}/l7policies/{policy['id']}/rules", {"rule": {
            "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}}, 201)["rule"]
        self.call("PUT", f"{V}/quotas/{project}", {"quota": {"loadbalancer": 1000}}, 202)
        amps = self.call("GET", AMP, status=200, body=None)
        amp = next(a for a in amps["amphorae"] if a["loadbalancer_id"] == lb["id"])
        return {"lb": lb["id"], "listener": listener["id"], "pool": pool["id"],
                "member": member["id"], "member_address": member["address"],
                "hm": hm["id"], "l7policy": policy["id"], "l7rule": rule["id"],
                "amphora": amp["id"], "port": lb["vip_port_id"],
                "network": lb["vip_network_id"], "subnet": lb["vip_subnet_id"]}

    def build_catalog(self) -> None:
        fp = self.call("POST", f"{V}/flavorprofiles", {"flavorprofile": {
            "name": "fp", "provider_name": "amphora",
            "flavor_data": json.dumps({"loadbalancer_topology": "SINGLE"})}},
            201)["flavorprofile"]
        flavor = self.call("POST", f"{V}/flavors", {"flavor": {
            "name": "small", "flavor_profile_id": fp["id"]}}, 201)["flavor"]
        azp = self.call("POST", f"{V}/availabilityzoneprofiles", {"availability_zone_profile": {
            "name": "azp", "provider_name": "amphora",
            "availability_zone_data": json.dumps({"compute_zone": "rack1"})}},
            201)["availability_zone_profile"]
        az = self.call("POST", f"{V}/availabilityzones", {"availability_zone": {
            "name": "az1", "availability_zone_profile_id": azp["id"]}},
            201)["availability_zone"]
        self.a.update(flavorprofile=fp["id"], flavor=flavor["id"], azprofile=azp["id"],
                      az=az["name"])
        # A second load balancer of A whose children are made and destroyed by the calls.
        scratch = self.call("POST", f"{V}/loadbalancers", {"loadbalancer": {
            "name": "scratch", "vip_subnet_id": self.api.subnet_id,
            "project_id": PROJECT_A}}, 201)["loadbalancer"]
        listener = self.call("POST", f"{V}/listeners", {"listener": {
            "loadbalancer_id": scratch["id"], "protocol": "HTTP", "protocol_port": 80}},
            201)["listener"]
        self.a.update(scratch_lb=scratch["id"], scratch_listener=listener["id"])
        # A secret of A (the administrator's project): the store keeps the caller's project.
        self.a["secret"] = self.fresh_secret()
        self.a["container"] = self.fresh_container()

    # -- fresh objects of project A (each call that destroys its target gets its own) --
    def fresh_lb(self) -> str:
        return str(self.call("POST", f"{V}/loadbalancers", {"loadbalancer": {
            "name": f"fresh-{self.n()}", "vip_subnet_id": self.api.subnet_id,
            "project_id": PROJECT_A}}, 201)["loadbalancer"]["id"])

    def fresh_listener(self) -> str:
        return str(self.call("POST", f"{V}/listeners", {"listener": {
            "loadbalancer_id": self.a["scratch_lb"], "protocol": "HTTP",
            "protocol_port": 1000 + self.n()}}, 201)["listener"]["id"])

    def fresh_pool(self) -> str:
        return str(self.call("POST", f"{V}/pools", {"pool": {
            "loadbalancer_id": self.a["scratch_lb"], "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN"}}, 201)["pool"]["id"])

    def fresh_member(self) -> str:
        return str(self.call("POST", f"{V}/pools/{self.a['pool']}/members", {"member": {
            "address": "10.210.0.60", "protocol_port": 2000 + self.n()}},
            201)["member"]["id"])

    def fresh_hm(self) -> str:
        return str(self.call("POST", f"{V}/healthmonitors", {"healthmonitor": {
            "pool_id": self.fresh_pool(), "type": "TCP", "delay": 5, "timeout": 3,
            "max_retries": 3}}, 201)["healthmonitor"]["id"])

    def fresh_l7policy(self) -> str:
        return str(self.call("POST", f"{V}/l7policies", {"l7policy": {
            "listener_id": self.a["scratch_listener"], "action": "REJECT"}},
            201)["l7policy"]["id"])

    def fresh_l7rule(self) -> tuple[str, str]:
        policy = self.fresh_l7policy()
        rule = self.call("POST", f"{V}/l7policies/{policy}/rules", {"rule": {
            "type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "example.com"}},
            201)["rule"]
        return policy, str(rule["id"])

    def fresh_secret(self) -> str:
        ref = self.call("POST", "/v1/secrets", {"name": f"s-{self.n()}", "payload": "opaque",
                                                "payload_content_type": "text/plain"},
                        201)["secret_ref"]
        return str(ref).rsplit("/", 1)[-1]

    def fresh_container(self) -> str:
        ref = self.call("POST", "/v1/containers", {"name": f"c-{self.n()}", "type": "generic",
                                                   "secret_refs": []}, 201)["container_ref"]
        return str(ref).rsplit("/", 1)[-1]

    def fresh_flavorprofile(self) -> str:
        return str(self.call("POST", f"{V}/flavorprofiles", {"flavorprofile": {
            "name": f"fp-{self.n()}", "provider_name": "amphora",
            "flavor_data": "{}"}}, 201)["flavorprofile"]["id"])

    def fresh_flavor(self) -> str:
        return str(self.call("POST", f"{V}/flavors", {"flavor": {
            "name": f"flavor-{self.n()}", "flavor_profile_id": self.a["flavorprofile"]}},
            201)["flavor"]["id"])

    def fresh_azprofile(self) -> str:
        return str(self.call("POST", f"{V}/availabilityzoneprofiles", {
            "availability_zone_profile": {"name": f"azp-{self.n()}", "provider_name": "amphora",
                                          "availability_zone_data": "{}"}},
            201)["availability_zone_profile"]["id"])

    def fresh_az(self) -> str:
        return str(self.call("POST", f"{V}/availabilityzones", {"availability_zone": {
            "name": f"az-{self.n()}", "availability_zone_profile_id": self.a["azprofile"]}},
            201)["availability_zone"]["name"])

    def fresh_amphora(self, status: str = "ALLOCATED") -> str:
        if status == "ERROR":
            amp_id = new_id()
            with self.api.deps.db.write() as s:
                s.add(m.Amphora(id=amp_id, status="ERROR"))
            return amp_id
        lb = self.fresh_lb()
        with self.api.deps.db.read() as s:
            return str(s.scalars(sa.select(m.Amphora.id).where(
                m.Amphora.load_balancer_id == lb)).one())


# ---- the table: every route, who may call it, and how to call it ------------------------------

Request = tuple[str, Any]  # (path with ids and query, JSON body or None)


@dataclass(frozen=True)
class Route:
    """Who may call a route, and the request to send: on the standing objects of A, or, for
    a caller that is expected to be allowed and when given, on a fresh object (calls that
    destroy or replace their target)."""

    allowed: frozenset[str]
    request: Callable[[World], Request]
    fresh: Callable[[World], Request] | None = None
    # For top-level lists: the response key, and who sees every project (else: own only).
    list_key: str | None = None
    sees_all: frozenset[str] = GLOBAL

    def request_for(self, w: World, caller: str | None) -> Request:
        if self.fresh is not None and caller in self.allowed:
            return self.fresh(w)
        return self.request(w)


def _a(w: World, key: str) -> str:
    return w.a[key]


def _hm_body(pool_id: str) -> dict[str, Any]:
    return {"healthmonitor": {"pool_id": pool_id, "type": "PING", "delay": 5, "timeout": 3,
                              "max_retries": 3}}


ROUTES: dict[tuple[str, str], Route] = {
    # -- load balancers --
    ("GET", "/v2/lbaas/loadbalancers"): Route(
        OWN_LIST, lambda w: (f"{V}/loadbalancers", None), list_key="loadbalancers"),
    ("POST", "/v2/lbaas/loadbalancers"): Route(
        WRITE, lambda w: (f"{V}/loadbalancers", {"loadbalancer": {
            "name": f"rbac-{w.n()}", "vip_subnet_id": w.api.subnet_id,
            "project_id": PROJECT_A}})),
    ("GET", "/v2/lbaas/loadbalancers/{lb_id}"): Route(
        READ, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}", None)),
    ("PUT", "/v2/lbaas/loadbalancers/{lb_id}"): Route(
        WRITE, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}",
                          {"loadbalancer": {"description": f"put {w.n()}"}})),
    ("DELETE", "/v2/lbaas/loadbalancers/{lb_id}"): Route(
        WRITE, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}", None),
        lambda w: (f"{V}/loadbalancers/{w.fresh_lb()}", None)),
    ("GET", "/v2/lbaas/loadbalancers/{lb_id}/stats"): Route(
        READ, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}/stats", None)),
    ("GET", "/v2/lbaas/loadbalancers/{lb_id}/status"): Route(
        READ, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}/status", None)),
    ("PUT", "/v2/lbaas/loadbalancers/{lb_id}/failover"): Route(
        ADMINS, lambda w: (f"{V}/loadbalancers/{_a(w, 'lb')}/failover", None),
        lambda w: (f"{V}/loadbalancers/{w.fresh_lb()}/failover", None)),
    # -- listeners --
    ("GET", "/v2/lbaas/listeners"): Route(
        OWN_LIST, lambda w: (f"{V}/listeners", None), list_key="listeners"),
    ("POST", "/v2/lbaas/listeners"): Route(
        WRITE, lambda w: (f"{V}/listeners", {"listener": {
            "loadbalancer_id": _a(w, "scratch_lb"), "protocol": "TCP",
            "protocol_port": 3000 + w.n()}})),
    ("GET", "/v2/lbaas/listeners/{listener_id}"): Route(
        READ, lambda w: (f"{V}/listeners/{_a(w, 'listener')}", None)),
    ("PUT", "/v2/lbaas/listeners/{listener_id}"): Route(
        WRITE, lambda w: (f"{V}/listeners/{_a(w, 'listener')}",
                          {"listener": {"description": f"put {w.n()}"}})),
    ("DELETE", "/v2/lbaas/listeners/{listener_id}"): Route(
        WRITE, lambda w: (f"{V}/listeners/{_a(w, 'listener')}", None),
        lambda w: (f"{V}/listeners/{w.fresh_listener()}", None)),
    ("GET", "/v2/lbaas/listeners/{listener_id}/stats"): Route(
        READ, lambda w: (f"{V}/listeners/{_a(w, 'listener')}/stats", None)),
    # -- pools --
    ("GET", "/v2/lbaas/pools"): Route(
        OWN_LIST, lambda w: (f"{V}/pools", None), list_key="pools"),
    ("POST", "/v2/lbaas/pools"): Route(
        WRITE, lambda w: (f"{V}/pools", {"pool": {
            "loadbalancer_id": _a(w, "scratch_lb"), "protocol": "TCP",
            "lb_algorithm": "ROUND_ROBIN"}})),
    ("GET", "/v2/lbaas/pools/{pool_id}"): Route(
        READ, lambda w: (f"{V}/pools/{_a(w, 'pool')}", None)),
    ("PUT", "/v2/lbaas/pools/{pool_id}"): Route(
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}",
                          {"pool": {"description": f"put {w.n()}"}})),
    ("DELETE", "/v2/lbaas/pools/{pool_id}"): Route(
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}", None),
        lambda w: (f"{V}/pools/{w.fresh_pool()}", None)),
    # -- members --
    ("GET", "/v2/lbaas/pools/{pool_id}/members"): Route(
        MEMBER_LIST, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members", None)),
    ("POST", "/v2/lbaas/pools/{pool_id}/members"): Route(
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members", {"member": {
            "address": "10.210.0.70", "protocol_port": 4000 + w.n()}})),
    ("PUT", "/v2/lbaas/pools/{pool_id}/members"): Route(
        # The batch update with the standing member only: a no-op, answered 202.
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members", {"members": [{
            "address": _a(w, "member_address"), "protocol_port": 8080}]})),
    ("GET", "/v2/lbaas/pools/{pool_id}/members/{member_id}"): Route(
        READ, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members/{_a(w, 'member')}", None)),
    ("PUT", "/v2/lbaas/pools/{pool_id}/members/{member_id}"): Route(
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members/{_a(w, 'member')}",
                          {"member": {"name": f"put-{w.n()}"}})),
    ("DELETE", "/v2/lbaas/pools/{pool_id}/members/{member_id}"): Route(
        WRITE, lambda w: (f"{V}/pools/{_a(w, 'pool')}/members/{_a(w, 'member')}", None),
        lambda w: (f"{V}/pools/{_a(w, 'pool')}/members/{w.fresh_member()}", None)),
    # -- health monitors --
    ("GET", "/v2/lbaas/healthmonitors"): Route(
        OWN_LIST, lambda w: (f"{V}/healthmonitors", None), list_key="healthmonitors"),
    ("POST", "/v2/lbaas/healthmonitors"): Route(
        WRITE, lambda w: (f"{V}/healthmonitors", _hm_body(_a(w, "pool"))),
        lambda w: (f"{V}/healthmonitors", _hm_body(w.fresh_pool()))),
    ("GET", "/v2/lbaas/healthmonitors/{hm_id}"): Route(
        READ, lambda w: (f"{V}/healthmonitors/{_a(w, 'hm')}", None)),
    ("PUT", "/v2/lbaas/healthmonitors/{hm_id}"): Route(
        WRITE, lambda w: (f"{V}/healthmonitors/{_a(w, 'hm')}",
                          {"healthmonitor": {"name": f"put-{w.n()}"}})),
    ("DELETE", "/v2/lbaas/healthmonitors/{hm_id}"): Route(
        WRITE, lambda w: (f"{V}/healthmonitors/{_a(w, 'hm')}", None),
        lambda w: (f"{V}/healthmonitors/{w.fresh_hm()}", None)),
    # -- L7 policies and rules --
    ("GET", "/v2/lbaas/l7policies"): Route(
        OWN_LIST, lambda w: (f"{V}/l7policies", None), list_key="l7policies"),
    ("POST", "/v2/lbaas/l7policies"): Route(
        WRITE, lambda w: (f"{V}/l7policies", {"l7policy": {
            "listener_id": _a(w, "scratch_listener"), "action": "REJECT"}})),
    ("GET", "/v2/lbaas/l7policies/{l7policy_id}"): Route(
        READ, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}", None)),
    ("PUT", "/v2/lbaas/l7policies/{l7policy_id}"): Route(
        WRITE, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}",
                          {"l7policy": {"name": f"put-{w.n()}"}})),
    ("DELETE", "/v2/lbaas/l7policies/{l7policy_id}"): Route(
        WRITE, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}", None),
        lambda w: (f"{V}/l7policies/{w.fresh_l7policy()}", None)),
    ("GET", "/v2/lbaas/l7policies/{l7policy_id}/rules"): Route(
        READ, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}/rules", None)),
    ("POST", "/v2/lbaas/l7policies/{l7policy_id}/rules"): Route(
        WRITE, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}/rules", {"rule": {
            "type": "PATH", "compare_type": "EQUAL_TO", "value": "/x"}})),
    ("GET", "/v2/lbaas/l7policies/{l7policy_id}/rules/{rule_id}"): Route(
        READ, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}/rules/{_a(w, 'l7rule')}",
                         None)),
    ("PUT", "/v2/lbaas/l7policies/{l7policy_id}/rules/{rule_id}"): Route(
        WRITE, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}/rules/{_a(w, 'l7rule')}",
                          {"rule": {"value": f"/api{w.n()}"}})),
    ("DELETE", "/v2/lbaas/l7policies/{l7policy_id}/rules/{rule_id}"): Route(
        WRITE, lambda w: (f"{V}/l7policies/{_a(w, 'l7policy')}/rules/{_a(w, 'l7rule')}",
                          None),
        lambda w: ("{}/l7policies/{}/rules/{}".format(V, *w.fresh_l7rule()), None)),
    # -- quotas --
    ("GET", "/v2/lbaas/quotas"): Route(
        OWN_QUOTA, lambda w: (f"{V}/quotas", None), list_key="quotas",
        sees_all=GLOBAL_QUOTA),
    ("GET", "/v2/lbaas/quotas/defaults"): Route(
        OWN_QUOTA, lambda w: (f"{V}/quotas/defaults", None)),
    ("GET", "/v2/lbaas/quotas/{project_id}"): Route(
        READ_QUOTA, lambda w: (f"{V}/quotas/{PROJECT_A}", None)),
    ("PUT", "/v2/lbaas/quotas/{project_id}"): Route(
        WRITE_QUOTA, lambda w: (f"{V}/quotas/{PROJECT_A}",
                                {"quota": {"loadbalancer": 1000 + w.n()}})),
    ("DELETE", "/v2/lbaas/quotas/{project_id}"): Route(
        WRITE_QUOTA, lambda w: (f"{V}/quotas/{PROJECT_A}", None)),
    # -- providers --
    ("GET", "/v2/lbaas/providers"): Route(OWN_LIST, lambda w: (f"{V}/providers", None)),
    ("GET", "/v2/lbaas/providers/{provider}/flavor_capabilities"): Route(
        ADMINS, lambda w: (f"{V}/providers/amphora/flavor_capabilities", None)),
    ("GET", "/v2/lbaas/providers/{provider}/availability_zone_capabilities"): Route(
        ADMINS, lambda w: (f"{V}/providers/amphora/availability_zone_capabilities", None)),
    # -- flavors and flavor profiles --
    ("GET", "/v2/lbaas/flavors"): Route(OWN_LIST, lambda w: (f"{V}/flavors", None)),
    ("POST", "/v2/lbaas/flavors"): Route(
        ADMINS, lambda w: (f"{V}/flavors", {"flavor": {
            "name": f"f-{w.n()}", "flavor_profile_id": _a(w, "flavorprofile")}})),
    ("GET", "/v2/lbaas/flavors/{flavor_id}"): Route(
        OWN_LIST, lambda w: (f"{V}/flavors/{_a(w, 'flavor')}", None)),
    ("PUT", "/v2/lbaas/flavors/{flavor_id}"): Route(
        ADMINS, lambda w: (f"{V}/flavors/{_a(w, 'flavor')}",
                           {"flavor": {"description": f"put {w.n()}"}})),
    ("DELETE", "/v2/lbaas/flavors/{flavor_id}"): Route(
        ADMINS, lambda w: (f"{V}/flavors/{_a(w, 'flavor')}", None),
        lambda w: (f"{V}/flavors/{w.fresh_flavor()}", None)),
    ("GET", "/v2/lbaas/flavorprofiles"): Route(
        ADMINS, lambda w: (f"{V}/flavorprofiles", None)),
    ("POST", "/v2/lbaas/flavorprofiles"): Route(
        ADMINS, lambda w: (f"{V}/flavorprofiles", {"flavorprofile": {
            "name": f"fp-{w.n()}", "provider_name": "amphora", "flavor_data": "{}"}})),
    ("GET", "/v2/lbaas/flavorprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/flavorprofiles/{_a(w, 'flavorprofile')}", None)),
    ("PUT", "/v2/lbaas/flavorprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/flavorprofiles/{_a(w, 'flavorprofile')}",
                           {"flavorprofile": {"name": f"fp-put-{w.n()}"}})),
    ("DELETE", "/v2/lbaas/flavorprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/flavorprofiles/{_a(w, 'flavorprofile')}", None),
        lambda w: (f"{V}/flavorprofiles/{w.fresh_flavorprofile()}", None)),
    # -- availability zones and their profiles --
    ("GET", "/v2/lbaas/availabilityzones"): Route(
        OWN_LIST, lambda w: (f"{V}/availabilityzones", None)),
    ("POST", "/v2/lbaas/availabilityzones"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzones", {"availability_zone": {
            "name": f"az-new-{w.n()}", "availability_zone_profile_id": _a(w, "azprofile")}})),
    ("GET", "/v2/lbaas/availabilityzones/{name}"): Route(
        OWN_LIST, lambda w: (f"{V}/availabilityzones/{_a(w, 'az')}", None)),
    ("PUT", "/v2/lbaas/availabilityzones/{name}"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzones/{_a(w, 'az')}",
                           {"availability_zone": {"description": f"put {w.n()}"}})),
    ("DELETE", "/v2/lbaas/availabilityzones/{name}"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzones/{_a(w, 'az')}", None),
        lambda w: (f"{V}/availabilityzones/{w.fresh_az()}", None)),
    ("GET", "/v2/lbaas/availabilityzoneprofiles"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzoneprofiles", None)),
    ("POST", "/v2/lbaas/availabilityzoneprofiles"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzoneprofiles", {"availability_zone_profile": {
            "name": f"azp-{w.n()}", "provider_name": "amphora",
            "availability_zone_data": "{}"}})),
    ("GET", "/v2/lbaas/availabilityzoneprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzoneprofiles/{_a(w, 'azprofile')}", None)),
    ("PUT", "/v2/lbaas/availabilityzoneprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzoneprofiles/{_a(w, 'azprofile')}",
                           {"availability_zone_profile": {"name": f"azp-put-{w.n()}"}})),
    ("DELETE", "/v2/lbaas/availabilityzoneprofiles/{profile_id}"): Route(
        ADMINS, lambda w: (f"{V}/availabilityzoneprofiles/{_a(w, 'azprofile')}", None),
        lambda w: (f"{V}/availabilityzoneprofiles/{w.fresh_azprofile()}", None)),
    # -- amphorae (admin API) --
    ("GET", "/v2/octavia/amphorae"): Route(ADMINS, lambda w: (AMP, None)),
    ("GET", "/v2/octavia/amphorae/{amphora_id}"): Route(
        ADMINS, lambda w: (f"{AMP}/{_a(w, 'amphora')}", None)),
    ("DELETE", "/v2/octavia/amphorae/{amphora_id}"): Route(
        ADMINS, lambda w: (f"{AMP}/{_a(w, 'amphora')}", None),
        lambda w: (f"{AMP}/{w.fresh_amphora('ERROR')}", None)),
    ("GET", "/v2/octavia/amphorae/{amphora_id}/stats"): Route(
        ADMINS, lambda w: (f"{AMP}/{_a(w, 'amphora')}/stats", None)),
    ("PUT", "/v2/octavia/amphorae/{amphora_id}/config"): Route(
        ADMINS, lambda w: (f"{AMP}/{_a(w, 'amphora')}/config", None)),
    ("PUT", "/v2/octavia/amphorae/{amphora_id}/failover"): Route(
        ADMINS, lambda w: (f"{AMP}/{_a(w, 'amphora')}/failover", None),
        lambda w: (f"{AMP}/{w.fresh_amphora()}/failover", None)),
    # -- the secret store (Barbican subset; project isolation of lists: test_secrets.py) --
    ("GET", "/v1/secrets"): Route(OWN_SECRETS, lambda w: ("/v1/secrets", None)),
    ("POST", "/v1/secrets"): Route(
        STORE_SECRET, lambda w: ("/v1/secrets", {"payload": "x", "payload_content_type":
                                                 "text/plain"})),
    ("GET", "/v1/secrets/{secret_id}"): Route(
        READ_SECRET, lambda w: (f"/v1/secrets/{_a(w, 'secret')}", None)),
    ("GET", "/v1/secrets/{secret_id}/payload"): Route(
        READ_SECRET, lambda w: (f"/v1/secrets/{_a(w, 'secret')}/payload", None)),
    ("DELETE", "/v1/secrets/{secret_id}"): Route(
        WRITE, lambda w: (f"/v1/secrets/{_a(w, 'secret')}", None),
        lambda w: (f"/v1/secrets/{w.fresh_secret()}", None)),
    ("GET", "/v1/containers"): Route(OWN_SECRETS, lambda w: ("/v1/containers", None)),
    ("POST", "/v1/containers"): Route(
        STORE_SECRET, lambda w: ("/v1/containers", {"type": "generic", "secret_refs": []})),
    ("GET", "/v1/containers/{container_id}"): Route(
        READ_SECRET, lambda w: (f"/v1/containers/{_a(w, 'container')}", None)),
    ("DELETE", "/v1/containers/{container_id}"): Route(
        WRITE, lambda w: (f"/v1/containers/{_a(w, 'container')}", None),
        lambda w: (f"/v1/containers/{w.fresh_container()}", None)),
    # -- the read-only Neutron view (Statera's own; read like flavors: any reader) --
    ("GET", "/v2.0/networks"): Route(OWN_LIST, lambda w: ("/v2.0/networks", None)),
    ("GET", "/v2.0/networks/{network_id}"): Route(
        OWN_LIST, lambda w: (f"/v2.0/networks/{_a(w, 'network')}", None)),
    ("GET", "/v2.0/subnets"): Route(OWN_LIST, lambda w: ("/v2.0/subnets", None)),
    ("GET", "/v2.0/subnets/{subnet_id}"): Route(
        OWN_LIST, lambda w: (f"/v2.0/subnets/{_a(w, 'subnet')}", None)),
    ("GET", "/v2.0/ports"): Route(
        OWN_LIST, lambda w: ("/v2.0/ports", None), list_key="ports", sees_all=ADMINS),
    ("GET", "/v2.0/ports/{port_id}"): Route(
        OWN_LIST, lambda w: (f"/v2.0/ports/{_a(w, 'port')}", None)),
}


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    api = build_api(tmp_path_factory.mktemp("rbac"),
                    STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    for name, (project, roles) in CALLERS.items():
        if roles:
            users.add_user(api.deps.db, name, PASSWORD, project, roles)
        else:  # `statera user add` insists on a role; a user row without one is still possible
            with api.deps.db.write() as s:
                s.add(m.User(name=name, password_hash=users.hash_password(PASSWORD),
                             project_id=project, roles=[]))
    w = World(api)
    w.a.update(w.build_tree(PROJECT_A))
    w.b.update(w.build_tree(PROJECT_B))
    w.build_catalog()
    yield w
    api.client.close()
    api.deps.db.dispose()


def _openapi(api: Api) -> dict[str, Any]:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200, f"GET /openapi.json -> {r.status_code} {r.text}"
    return r.json()  # type: ignore[no-any-return]


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items()
            for method in ops if method in ("get", "put", "post", "delete", "patch")}


# ---- tests ------------------------------------------------------------------------------------


def test_openapi_document_is_served(world: World) -> None:
    """The README promises the OpenAPI document at /openapi.json, without credentials (the
    ``.json`` suffix is not stripped from it as from API paths), and /docs loads it."""
    assert "paths" in _openapi(world.api)
    docs = world.api.client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_table_covers_every_route(world: World) -> None:
    ops = _operations(_openapi(world.api))
    missing = sorted(ops - set(ROUTES))
    stale = sorted(set(ROUTES) - ops)
    assert not missing, f"routes without an RBAC expectation (add them to ROUTES): {missing}"
    assert not stale, f"ROUTES names routes the API no longer has: {stale}"


@pytest.mark.parametrize("op", sorted(ROUTES), ids=lambda op: f"{op[0]} {op[1]}")
def test_route_under_every_role(world: World, op: tuple[str, str]) -> None:
    method, _ = op
    route = ROUTES[op]
    mismatches: list[str] = []
    successes = 0
    for caller in [*CALLERS, None]:
        path, body = route.request_for(world, caller)
        headers = _basic(caller) if caller else {}
        r = world.api.client.request(method, path, json=body, headers=headers)
        if method != "GET" and r.is_success:
            world.api.settle()
        who = caller or "(no credentials)"
        if caller is None:
            if r.status_code != 401:
                mismatches.append(f"{who}: expected 401, got {r.status_code} {r.text[:200]}")
            continue
        expected_allowed = caller in route.allowed
        got_allowed = r.status_code not in (401, 403) and r.status_code < 500
        if r.status_code >= 500:
            mismatches.append(f"{who}: {r.status_code} {r.text[:200]}")
        elif expected_allowed and not got_allowed:
            mismatches.append(f"{who}: expected allowed, got {r.status_code} {r.text[:200]}")
        elif not expected_allowed and r.status_code != 403:
            mismatches.append(f"{who}: expected 403, got {r.status_code} {r.text[:200]}")
        if r.is_success:
            successes += 1
        if route.list_key and r.is_success:
            mismatches.extend(_leaks(world, route, caller, r.json()))
    assert not mismatches, f"{method} {op[1]}:\n  " + "\n  ".join(mismatches)
    assert successes, f"{method} {op[1]}: no caller got a 2xx; the test's request is wrong"


def _leaks(w: World, route: Route, caller: str, body: dict[str, Any]) -> list[str]:
    """A list must show only the caller's project unless the caller sees every project."""
    key = route.list_key
    assert key is not None
    items = body[key]
    project = CALLERS[caller][0]
    projects = {i.get("project_id") for i in items}
    if caller in route.sees_all:
        want = {PROJECT_A, PROJECT_B}
        if not want <= projects:
            return [f"{caller} (global) sees {sorted(map(str, projects))} in {key}, "
                    f"expected at least {sorted(want)}"]
        return []
    foreign = sorted(str(p) for p in projects if p != project)
    if foreign:
        return [f"{caller} (project {project}) sees objects of {foreign} in {key}"]
    if project in (PROJECT_A, PROJECT_B) and key != "quotas" and not items:
        return [f"{caller} (project {project}) sees none of its own {key}"]
    return []


def test_wrong_password_and_unknown_user_are_401(world: World) -> None:
    bad = base64.b64encode(f"{ADMIN}:not-the-password".encode()).decode()
    ghost = base64.b64encode(b"ghost:whatever").decode()
    for auth in (f"Basic {bad}", f"Basic {ghost}", "Basic !!!", "Bearer abc"):
        r = world.api.client.get(f"{V}/loadbalancers", headers={"Authorization": auth})
        assert r.status_code == 401, (auth, r.status_code, r.text)


def test_other_project_objects_are_invisible_by_id(world: World) -> None:
    """Project B's member cannot read or change A's objects one by one (403, like upstream),
    and project A's member cannot reach B's."""
    for caller, tree, owner in ((MEMBER_B, world.a, PROJECT_A), (MEMBER_A, world.b, PROJECT_B)):
        for path in (f"{V}/loadbalancers/{tree['lb']}", f"{V}/listeners/{tree['listener']}",
                     f"{V}/pools/{tree['pool']}", f"{V}/healthmonitors/{tree['hm']}",
                     f"{V}/l7policies/{tree['l7policy']}",
                     f"{V}/pools/{tree['pool']}/members/{tree['member']}",
                     f"{V}/l7policies/{tree['l7policy']}/rules/{tree['l7rule']}"):
            r = world.api.client.get(path, headers=_basic(caller))
            assert r.status_code == 403, (caller, path, r.status_code, r.text)
        # Filtering on the other project's id does not widen the list.
        r = world.api.client.get(f"{V}/loadbalancers", headers=_basic(caller),
                                 params={"project_id": owner})
        assert r.status_code == 403 or all(
            lb["id"] != tree["lb"] for lb in r.json()["loadbalancers"]), (caller, r.text)


def test_hidden_aliases_enforce_the_same_policy(world: World) -> None:
    """Routes kept out of the OpenAPI document answer exactly as their documented twins: the
    ``/v2.0`` prefix, the ``.json`` suffix and ``/statuses``."""
    differences: list[str] = []
    for (method, template), route in sorted(ROUTES.items()):
        if method != "GET" or not template.startswith("/v2/"):
            continue
        path, _ = route.request(world)
        base, _, query = path.partition("?")
        twins = [("/v2.0/" + base[len("/v2/"):]), base + ".json"]
        if base.endswith("/status"):
            twins.append(base + "es")
        for caller in (MEMBER_A, MEMBER_B, READER_A, NO_ROLE, GLOBAL_OBSERVER):
            want = world.api.client.get(path, headers=_basic(caller)).status_code
            for twin in twins:
                got = world.api.client.get(twin + (f"?{query}" if query else ""),
                                           headers=_basic(caller)).status_code
                if got != want:
                    differences.append(f"{caller}: GET {twin} -> {got}, GET {path} -> {want}")
    assert not differences, "\n".join(differences)
