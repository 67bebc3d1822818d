"""SEC-1, the API half: property-based fuzzing of every operation of the OpenAPI document, and
hostile strings in every string field of the create bodies.

``test_operation_never_answers_5xx`` runs schemathesis (v4 Python API) against the ASGI app
(noauth, ``X-Project-Id: p1``) one operation at a time, in positive and negative generation
modes, half of the cases with the ids of real objects in the path and in the body (so that
bodies reach the validation behind the lookups, not only the 404), and asserts schemathesis'
``not_a_server_error`` check on every answer.

The number of examples per operation and mode is bounded for CI (default 30, the whole file
runs in well under 3 minutes on 2 cores). Raise it with ``STATERA_SCHEMATHESIS_EXAMPLES``; the
SEC-1 target is at least 1,000 cases per operation, which the nightly run gives with
``STATERA_SCHEMATHESIS_EXAMPLES=1000 pytest tests/unit/api/test_schemathesis.py``.

``test_hostile_strings_in_create_bodies`` walks the create-body schemas of load balancers,
listeners, pools, members, health monitors, L7 policies and L7 rules, and puts each of
``\\n \\r \\0 U+2028 # { } " \\ %[`` into every string slot (fields, list items, map keys and
values, nested objects) of an otherwise valid body: the answer must be 400 or 201, never 5xx,
and an accepted object must not hold ``\\n``, ``\\r`` or ``\\0`` anywhere (the renderer's half of
SEC-1 — ``haproxy -c`` on what was accepted — comes with the renderer).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.conftest import Api, build_api

EXAMPLES = int(os.environ.get("STATERA_SCHEMATHESIS_EXAMPLES", "30"))
HEADERS = {"X-Project-Id": "p1"}
V = "/v2/lbaas"


def _document() -> dict[str, Any]:
    """The OpenAPI document, without a database: to parametrize at collection time."""
    from statera.api.app import create_app
    from statera.config import load_settings
    from statera.db.database import Database
    from statera.services.deps import Deps

    state = tempfile.mkdtemp(prefix="statera-openapi-")
    settings_ = load_settings(environ={"STATERA_DEFAULT__STATE_PATH": state})
    db = Database(f"sqlite:///{Path(state) / 'unused.db'}")
    try:
        return create_app(Deps(settings=settings_, db=db)).openapi()
    finally:
        db.dispose()
        shutil.rmtree(state, ignore_errors=True)


DOCUMENT = _document()
OPERATIONS = sorted(
    (method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops
    if method in ("get", "put", "post", "delete", "patch"))


# ---- real objects, for path parameters and body references ------------------------------------


@dataclass
class Fuzz:
    api: Api
    schema: Any
    ids: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, status: int = 0) -> Any:
        r = self.api.client.request(method, path, json=body, headers=HEADERS)
        if status:
            assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        if method != "GET" and r.is_success:
            self.api.settle()
        return r.json() if r.content else None

    def tree(self, name: str) -> dict[str, str]:
        """A load balancer with one of each child, settled."""
        subnet = self.api.subnet_id
        lb = self.request("POST", f"{V}/loadbalancers", {"loadbalancer": {
            "name": name, "vip_subnet_id": subnet}}, 201)["loadbalancer"]
        listener = self.request("POST", f"{V}/listeners", {"listener": {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
            201)["listener"]
        pool = self.request("POST", f"{V}/pools", {"pool": {
            "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
            201)["pool"]
        member = self.request("POST", f"{V}/pools/{pool['id']}/members", {"member": {
            "address": "10.210.0.50", "protocol_port": 8080}}, 201)["member"]
        hm = self.request("POST", f"{V}/healthmonitors", {"healthmonitor": {
            "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3,
            "max_retries": 3}}, 201)["healthmonitor"]
        policy = self.request("POST", f"{V}/l7policies", {"l7policy": {
            "listener_id": listener["id"], "action": "REDIRECT_TO_URL",
            "redirect_url": "https://example.com/"}}, 201)["l7policy"]
        rule = self.request("POST", f"{V}/l7policies/{policy['id']}/rules", {"rule": {
            "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}}, 201)["rule"]
        return dict(
            lb_id=lb["id"], listener_id=listener["id"], pool_id=pool["id"],
            member_id=member["id"], hm_id=hm["id"], l7policy_id=policy["id"],
            rule_id=rule["id"], network_id=lb["vip_network_id"],
            subnet_id=lb["vip_subnet_id"], port_id=lb["vip_port_id"])

    def seed(self) -> None:
        self.ids.update(self.tree("fuzz"))
        fp = self.request("POST", f"{V}/flavorprofiles", {"flavorprofile": {
            "name": "fp", "provider_name": "amphora",
            "flavor_data": json.dumps({"loadbalancer_topology": "SINGLE"})}},
            201)["flavorprofile"]
        flavor = self.request("POST", f"{V}/flavors", {"flavor": {
            "name": "small", "flavor_profile_id": fp["id"]}}, 201)["flavor"]
        azp = self.request("POST", f"{V}/availabilityzoneprofiles", {
            "availability_zone_profile": {"name": "azp", "provider_name": "amphora",
                                          "availability_zone_data": "{}"}},
            201)["availability_zone_profile"]
        az = self.request("POST", f"{V}/availabilityzones", {"availability_zone": {
            "name": "az1", "availability_zone_profile_id": azp["id"]}},
            201)["availability_zone"]
        amps = self.request("GET", "/v2/octavia/amphorae", None, 200)["amphorae"]
        self.ids.update(
            flavor_id=flavor["id"], flavorprofile_id=fp["id"], azprofile_id=azp["id"],
            name=az["name"], amphora_id=amps[0]["id"], project_id="p1", provider="amphora")

    def path_parameters(self, path: str) -> dict[str, str]:
        names = [p[1:-1] for p in path.split("/") if p.startswith("{")]
        real = dict(self.ids)
        real["profile_id"] = (self.ids["azprofile_id"] if "availabilityzoneprofiles" in path
                              else self.ids["flavorprofile_id"])
        return {n: real[n] for n in names if n in real}

    def body_references(self) -> dict[str, str]:
        """Body attributes that name another object, and a real one to name."""
        i = self.ids
        return {"loadbalancer_id": i["lb_id"], "listener_id": i["listener_id"],
                "pool_id": i["pool_id"], "default_pool_id": i["pool_id"],
                "redirect_pool_id": i["pool_id"], "vip_subnet_id": i["subnet_id"],
                "vip_network_id": i["network_id"], "subnet_id": i["subnet_id"],
                "flavor_id": i["flavor_id"], "flavor_profile_id": i["flavorprofile_id"],
                "availability_zone_profile_id": i["azprofile_id"],
                "availability_zone": i["name"], "provider": "amphora",
                "provider_name": "amphora"}


def _load_schema(api: Api) -> Any:
    """The document the app serves at /openapi.json, bound to the app (ASGI transport)."""
    return schemathesis.openapi.from_asgi("/openapi.json", api.client.app, headers=HEADERS)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    api = build_api(tmp_path_factory.mktemp("schemathesis"))
    f = Fuzz(api=api, schema=_load_schema(api))
    f.seed()
    yield f
    api.client.close()
    api.deps.db.dispose()


def test_document_lists_the_operations_fuzzed(fuzz: Fuzz) -> None:
    labels = {(op.method.upper(), op.path) for op in
              (r.ok() for r in fuzz.schema.get_all_operations())}
    assert labels == set(OPERATIONS)
    assert len(OPERATIONS) > 60


# ---- schemathesis over every operation --------------------------------------------------------


def _with_real_references(case: Any, refs: dict[str, str]) -> Any:
    body = case.body
    if isinstance(body, dict):
        for inner in body.values():
            if isinstance(inner, dict):
                for key, value in refs.items():
                    if key in inner:
                        inner[key] = value
    return case


def _create_bases(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A valid create body per POST: the focused cases add a few generated fields to it."""
    i = ids
    return {
        f"{V}/loadbalancers": {"loadbalancer": {"vip_subnet_id": i["subnet_id"]}},
        f"{V}/listeners": {"listener": {"loadbalancer_id": i["lb_id"], "protocol": "HTTP",
                                        "protocol_port": 81}},
        f"{V}/pools": {"pool": {"loadbalancer_id": i["lb_id"], "protocol": "HTTP",
                                "lb_algorithm": "ROUND_ROBIN"}},
        f"{V}/pools/{{pool_id}}/members": {"member": {"address": "10.210.0.90",
                                                      "protocol_port": 80}},
        f"{V}/healthmonitors": {"healthmonitor": {"pool_id": i["pool_id"], "type": "HTTP",
                                                  "delay": 5, "timeout": 3,
                                                  "max_retries": 3}},
        f"{V}/l7policies": {"l7policy": {"listener_id": i["listener_id"], "action": "REJECT"}},
        f"{V}/l7policies/{{l7policy_id}}/rules": {"rule": {
            "type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}},
        f"{V}/flavors": {"flavor": {"name": "f", "flavor_profile_id": i["flavorprofile_id"]}},
        f"{V}/flavorprofiles": {"flavorprofile": {"name": "fp", "provider_name": "amphora",
                                                  "flavor_data": "{}"}},
        f"{V}/availabilityzones": {"availability_zone": {
            "name": "az", "availability_zone_profile_id": i["azprofile_id"]}},
        f"{V}/availabilityzoneprofiles": {"availability_zone_profile": {
            "name": "azp", "provider_name": "amphora", "availability_zone_data": "{}"}},
    }


@st.composite
def _focused(draw: st.DrawFn, cases: st.SearchStrategy[Any], base: dict[str, Any] | None,
             refs: dict[str, str]) -> Any:
    """A generated case whose body keeps only a few generated fields on top of a valid base
    (for POST) or of nothing (for PUT): most such bodies pass validation, so the fuzzing
    reaches the services behind it, not only the request models."""
    case = draw(cases)
    body = case.body
    if isinstance(body, dict) and len(body) == 1:
        wrapper, inner = next(iter(body.items()))
        if isinstance(inner, dict):
            keep = draw(st.lists(st.sampled_from(sorted(inner)), max_size=3, unique=True)
                        if inner else st.just([]))
            start = json.loads(json.dumps((base or {}).get(wrapper, {})))
            start.update({k: refs.get(k, inner[k]) for k in keep})
            case.body = {wrapper: start}
    return case


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op[0]} {op[1]}")
def test_operation_never_answers_5xx(fuzz: Fuzz, operation: tuple[str, str]) -> None:
    method, path = operation
    op = fuzz.schema[path][method]
    real = fuzz.path_parameters(path)
    refs = fuzz.body_references()
    base = _create_bases(fuzz.ids).get(path) if method == "POST" else None
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(op.as_strategy(generation_mode=mode))
        # Deleting the standing objects would leave every later case a 404: DELETE gets
        # generated ids only.
        if method == "DELETE":
            continue
        with_ids = op.as_strategy(generation_mode=mode, path_parameters=real)
        strategies.append(with_ids.map(lambda c: _with_real_references(c, refs)))
        if method in ("POST", "PUT") and mode is GenerationMode.POSITIVE:
            strategies.append(_focused(with_ids, base, refs))
    seen: dict[int, int] = {}

    @given(case=st.one_of(strategies))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    def check(case: Any) -> None:
        response = case.call(headers=HEADERS)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        if method != "GET" and 200 <= response.status_code < 300:
            fuzz.api.settle()
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} body={case.body!r} "
            f"query={case.query!r} -> {response.status_code} {response.text[:500]}")
        case.validate_response(response, checks=(not_a_server_error,))

    check()
    assert seen, "no case was generated"


# ---- hostile strings in every string field of the create bodies --------------------------------

HOSTILE = ["a\nb", "a\rb", "a\x00b", "a\u2028b", "a#b", "a{b", "a}b", 'a"b', "a\\b", "a%[b",
           "x\n\r\x00\u2028#{}\"\\%[src] y"]
FORBIDDEN_IN_ACCEPTED = ("\n", "\r", "\x00")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _variants(doc: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        return [_resolve(doc, s) for s in schema["anyOf"] if s.get("type") != "null"]
    return [schema]


# A path into the inner body: keys, 0 for a list item, ("key",)/("value",) in a string map.
Slot = tuple[Any, ...]


def _string_slots(doc: dict[str, Any], schema: dict[str, Any], prefix: Slot = (),
                  depth: int = 0) -> list[Slot]:
    """Every place in a body where a string goes: string and string-enum fields, items of
    string lists, keys and values of string maps, and (one level down) the same inside plain
    nested objects. Nested resource creations (``*SingleCreate``: the single-call create) are
    left to their own create bodies."""
    slots: list[Slot] = []
    for name, prop in _resolve(doc, schema).get("properties", {}).items():
        refs = json.dumps(prop)
        if "SingleCreate" in refs:
            continue
        for variant in _variants(doc, prop):
            kind = variant.get("type")
            if kind == "string" or "enum" in variant:
                slots.append((*prefix, name))
            elif kind == "array":
                item = _resolve(doc, variant.get("items", {}))
                if item.get("type") == "string" or "enum" in item:
                    slots.append((*prefix, name, 0))
                elif (item.get("type") == "object" or "properties" in item) and depth < 1:
                    slots.extend(_string_slots(doc, item, (*prefix, name, 0), depth + 1))
            elif kind == "object" or "properties" in variant:
                extra = variant.get("additionalProperties")
                if isinstance(extra, dict) and _resolve(doc, extra).get("type") == "string":
                    slots.append((*prefix, name, ("key",)))
                    slots.append((*prefix, name, ("value",)))
                elif "properties" in variant and depth < 1:
                    slots.extend(_string_slots(doc, variant, (*prefix, name), depth + 1))
    return sorted(set(slots), key=repr)


def _put(body: dict[str, Any], slot: Slot, value: str) -> None:
    """Set ``value`` at ``slot`` in ``body`` (building lists, maps and objects as needed)."""
    *parents, last = slot
    node: Any = body
    for i, key in enumerate(parents):
        nxt = slot[i + 1]
        if isinstance(key, int):
            while len(node) <= key:
                node.append({})
            node = node[key]
            continue
        if key not in node or node[key] is None:
            node[key] = [] if isinstance(nxt, int) else {}
        node = node[key]
    if isinstance(last, int):
        node[:] = [value]
    elif isinstance(last, tuple):
        node.clear()
        if last == ("key",):
            node[value] = "true"
        else:
            node["X-Forwarded-For"] = value
    else:
        node[last] = value


@dataclass(frozen=True)
class CreateBody:
    wrapper: str
    schema: str
    path: str
    base: dict[str, Any]
    resource_path: str  # where the created object lives, for GET and DELETE


def _create_bodies(i: dict[str, str], port: int) -> dict[str, CreateBody]:
    return {
        "loadbalancer": CreateBody(
            "loadbalancer", "LoadBalancerCreate", f"{V}/loadbalancers",
            {"vip_subnet_id": i["subnet_id"], "name": "h"}, f"{V}/loadbalancers"),
        "listener": CreateBody(
            "listener", "ListenerCreate", f"{V}/listeners",
            {"loadbalancer_id": i["lb_id"], "protocol": "HTTP", "protocol_port": port},
            f"{V}/listeners"),
        "pool": CreateBody(
            "pool", "PoolCreate", f"{V}/pools",
            {"loadbalancer_id": i["lb_id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
            f"{V}/pools"),
        "member": CreateBody(
            "member", "MemberCreate", f"{V}/pools/{i['pool_id']}/members",
            {"address": "10.210.0.80", "protocol_port": port},
            f"{V}/pools/{i['pool_id']}/members"),
        "healthmonitor": CreateBody(
            "healthmonitor", "HealthMonitorCreate", f"{V}/healthmonitors",
            {"pool_id": "<fresh pool>", "type": "HTTP", "delay": 5, "timeout": 3,
             "max_retries": 3}, f"{V}/healthmonitors"),
        "l7policy": CreateBody(
            "l7policy", "L7PolicyCreate", f"{V}/l7policies",
            {"listener_id": i["listener_id"], "action": "REDIRECT_TO_URL",
             "redirect_url": "https://example.com/"}, f"{V}/l7policies"),
        "rule": CreateBody(
            "rule", "L7RuleCreate", f"{V}/l7policies/{i['l7policy_id']}/rules",
            {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Test", "value": "v"},
            f"{V}/l7policies/{i['l7policy_id']}/rules"),
    }


# Adjustments to the base body that make a field meaningful (its action, its type).
CONTEXT: dict[tuple[str, str], dict[str, Any]] = {
    ("l7policy", "redirect_prefix"): {"action": "REDIRECT_PREFIX", "redirect_url": None},
    ("l7policy", "redirect_pool_id"): {"action": "REDIRECT_TO_POOL", "redirect_url": None},
    ("pool", "session_persistence"): {"session_persistence": {"type": "APP_COOKIE",
                                                              "cookie_name": "c"}},
    ("listener", "default_tls_container_ref"): {"protocol": "TERMINATED_HTTPS"},
    ("listener", "sni_container_refs"): {"protocol": "TERMINATED_HTTPS"},
}


def _bad_chars(value: Any, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, str):
        if any(c in value for c in FORBIDDEN_IN_ACCEPTED):
            found.append(f"{where or 'value'}={value!r}")
    elif isinstance(value, dict):
        for k, v in value.items():
            found += _bad_chars(k, f"{where}.<key>")
            found += _bad_chars(v, f"{where}.{k}")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            found += _bad_chars(v, f"{where}[{n}]")
    return found


def test_hostile_strings_in_create_bodies(fuzz: Fuzz) -> None:
    doc = DOCUMENT
    # The fuzzing before may have set any quota for this project: back to the defaults.
    fuzz.request("DELETE", f"{V}/quotas/{HEADERS['X-Project-Id']}", None, 202)
    # A tree of its own: the fuzzing before may have grown the standing one.
    ids = fuzz.tree("hostile")
    problems: list[str] = []
    tried: dict[str, int] = {}
    port = iter(range(10000, 60000))
    # Health monitors go on a pool of their own (one monitor per pool; each accepted one is
    # deleted again, which frees the pool for the next attempt).
    hm_pool = fuzz.request("POST", f"{V}/pools", {"pool": {
        "loadbalancer_id": ids["lb_id"], "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN"}}, 201)["pool"]["id"]
    for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
                 "rule"):
        schema = doc["components"]["schemas"][_create_bodies(ids, 1)[kind].schema]
        slots = _string_slots(doc, schema)
        assert slots, kind
        tried[kind] = 0
        for slot in slots:
            for value in HOSTILE:
                spec = _create_bodies(ids, next(port))[kind]
                inner = json.loads(json.dumps(spec.base))
                if kind == "healthmonitor":
                    inner["pool_id"] = hm_pool
                for key, extra in CONTEXT.get((kind, str(slot[0])), {}).items():
                    if extra is None:
                        inner.pop(key, None)
                    else:
                        inner[key] = json.loads(json.dumps(extra))
                _put(inner, slot, value)
                tried[kind] += 1
                r = fuzz.api.client.post(spec.path, json={spec.wrapper: inner},
                                         headers=HEADERS)
                label = f"POST {spec.path} {kind}{list(slot)}={value!r}"
                if r.status_code not in (400, 201):
                    problems.append(f"{label} -> {r.status_code} {r.text[:300]}")
                if r.status_code != 201:
                    continue
                created = r.json()[spec.wrapper]
                fuzz.api.settle()
                shown = fuzz.request("GET", f"{spec.resource_path}/{created['id']}")
                bad = _bad_chars(created) + _bad_chars(shown)
                if bad:
                    problems.append(f"{label} accepted and stored {bad}")
                # Keep the tree small and every attempt independent of the ones before.
                fuzz.request("DELETE", f"{spec.resource_path}/{created['id']}")
    assert all(tried.values()), tried
    assert not problems, f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)
