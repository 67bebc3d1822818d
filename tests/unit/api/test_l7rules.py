"""/v2/lbaas/l7policies/{id}/rules: what each rule type accepts, the 50-rule cap, locking,
quota and lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, build_api

P = "/v2/lbaas/l7policies"
MISSING = "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"


def _policy(api: Api, **fields: Any) -> dict[str, Any]:
    lb = api.make_lb()
    li = api.post(
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
    )["listener"]
    api.settle()
    policy = api.post(P, {"l7policy": {"listener_id": li["id"], "action": "REJECT", **fields}})[
        "l7policy"
    ]
    api.settle()
    return policy  # type: ignore[no-any-return]


def _rule(api: Api, policy: dict[str, Any], *, status: int = 201, **fields: Any) -> Any:
    body = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", **fields}
    answer = api.post(f"{P}/{policy['id']}/rules", {"rule": body}, status=status)
    return answer["rule"] if status == 201 else answer


def _status(api: Api, path: str, key: str) -> str:
    return api.get(path)[key]["provisioning_status"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any]]]:
    """An app with one settled policy holding one HEADER rule; for tests that change nothing."""
    a = build_api(tmp_path_factory.mktemp("l7rules"))
    policy = _policy(a)
    rule = _rule(a, policy, type="HEADER", key="X-Version", compare_type="EQUAL_TO", value="2")
    a.settle()
    yield a, {"policy": policy, "rule": rule}
    a.client.close()
    a.deps.db.dispose()


def test_create_settle_update_delete(api: Api) -> None:
    policy = _policy(api)
    path = f"{P}/{policy['id']}/rules"
    rule = _rule(api, policy, invert=True, tags=["t"])
    assert rule["provisioning_status"] == "PENDING_CREATE"
    assert rule["operating_status"] == "OFFLINE"
    assert (rule["type"], rule["compare_type"], rule["value"], rule["key"], rule["invert"]) == (
        "PATH",
        "STARTS_WITH",
        "/api",
        None,
        True,
    )
    assert rule["tags"] == ["t"] and rule["admin_state_up"] is True
    assert "l7policy_id" not in rule
    assert _status(api, f"{P}/{policy['id']}", "l7policy") == "PENDING_UPDATE"
    listener = f"/v2/lbaas/listeners/{policy['listener_id']}"
    assert _status(api, listener, "listener") == "PENDING_UPDATE"
    api.settle()
    assert _status(api, f"{path}/{rule['id']}", "rule") == "ACTIVE"
    assert _status(api, f"{P}/{policy['id']}", "l7policy") == "ACTIVE"
    assert api.get(f"{P}/{policy['id']}")["l7policy"]["rules"] == [{"id": rule["id"]}]

    up = api.put(
        f"{path}/{rule['id']}",
        {
            "rule": {
                "type": "HEADER",
                "key": "X-Env",
                "compare_type": "EQUAL_TO",
                "value": '"two words"',
                "invert": False,
                "admin_state_up": False,
            }
        },
    )["rule"]
    assert up["provisioning_status"] == "PENDING_UPDATE"
    assert (up["type"], up["key"], up["value"], up["invert"], up["admin_state_up"]) == (
        "HEADER",
        "X-Env",
        '"two words"',
        False,
        False,
    )
    api.settle()
    # Moving to a key-less type drops the key.
    up = api.put(f"{path}/{rule['id']}", {"rule": {"type": "SSL_CONN_HAS_CERT", "value": "True"}})[
        "rule"
    ]
    assert (up["type"], up["key"], up["value"]) == ("SSL_CONN_HAS_CERT", None, "True")
    api.settle()

    api.delete(f"{path}/{rule['id']}")
    assert _status(api, f"{path}/{rule['id']}", "rule") == "PENDING_DELETE"
    api.settle()
    api.get(f"{path}/{rule['id']}", status=404)
    api.delete(f"{path}/{rule['id']}", status=404)
    assert api.get(f"{P}/{policy['id']}")["l7policy"]["rules"] == []


def test_v2_0_alias(api: Api) -> None:
    policy = _policy(api)
    rule = api.post(
        f"/v2.0/lbaas/l7policies/{policy['id']}/rules",
        {"rule": {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"}},
    )["rule"]
    api.settle()
    shown = api.get(f"/v2.0/lbaas/l7policies/{policy['id']}/rules/{rule['id']}")["rule"]
    assert shown["value"] == "www.example.com"


GOOD_RULES: list[dict[str, Any]] = [
    {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"},
    {"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": ".example.com"},
    {"type": "PATH", "compare_type": "CONTAINS", "value": "/v1/"},
    {"type": "PATH", "compare_type": "REGEX", "value": r"^/api/v[0-9]+/(a|b) x$"},
    {"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "jpg"},
    {"type": "FILE_TYPE", "compare_type": "REGEX", "value": "png|jpg"},
    {"type": "HEADER", "key": "X-Version", "compare_type": "STARTS_WITH", "value": "2."},
    {
        "type": "HEADER",
        "key": "User-Agent",
        "compare_type": "CONTAINS",
        "value": '"Mozilla 5.0 \\"x\\""',
    },
    {"type": "COOKIE", "key": "session", "compare_type": "EQUAL_TO", "value": "abc-123=="},
    {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "true"},
    {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
    {"type": "SSL_DN_FIELD", "key": "CN", "compare_type": "EQUAL_TO", "value": "client"},
    {
        "type": "SSL_DN_FIELD",
        "key": "emailAddress",
        "compare_type": "REGEX",
        "value": "@example\\.com$",
    },
]


def test_each_rule_type_accepts_good_values(api: Api) -> None:
    policy = _policy(api)
    for fields in GOOD_RULES:
        rule = _rule(api, policy, **fields)
        assert {k: rule[k] for k in fields} == fields
        api.settle()
    assert len(api.get(f"{P}/{policy['id']}/rules")["rules"]) == len(GOOD_RULES)


BAD_RULES: list[tuple[dict[str, Any], str]] = [
    ({"type": "BODY"}, "type"),
    ({"compare_type": "LIKE"}, "compare_type"),
    ({"value": None}, "value"),
    ({"value": ""}, "non-empty value"),
    ({"value": "x" * 256}, "value"),
    ({"value": "/a\nb"}, "value"),
    ({"value": "/a\rb"}, "value"),
    ({"value": "/a\x00"}, "value"),
    ({"value": "/a\u2028"}, "value"),
    ({"value": "/a b"}, "double quotes"),
    ({"value": '"unterminated'}, "double quotes"),
    ({"value": '"in "side"'}, "double quotes"),
    ({"compare_type": "REGEX", "value": "(unclosed"}, "regular expression"),
    ({"type": "HOST_NAME", "value": "a b.example.com"}, "double quotes"),
    ({"type": "FILE_TYPE", "compare_type": "STARTS_WITH", "value": "jp"}, "EQUAL_TO and REGEX"),
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "value": "v"}, "need a key"),
    ({"type": "HEADER", "key": "", "value": "v"}, "need a key"),
    ({"type": "HEADER", "key": "X Foo", "value": "v"}, "header or cookie name"),
    ({"type": "HEADER", "key": "X-Foo:", "value": "v"}, "header or cookie name"),
    ({"type": "HEADER", "key": "X-Foo\n", "value": "v"}, "key"),
    ({"type": "COOKIE", "value": "v"}, "need a key"),
    ({"type": "COOKIE", "key": "s", "value": "a;b"}, "cookie value"),
    ({"type": "COOKIE", "key": "s", "value": "a b"}, "cookie value"),
    ({"type": "COOKIE", "key": "s", "value": 'a"b'}, "cookie value"),
    ({"type": "COOKIE", "key": "s", "value": "a,b"}, "cookie value"),
    ({"type": "COOKIE", "key": "s", "value": "a\\b"}, "cookie value"),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "False"}, "'True'"),
    (
        {"type": "SSL_CONN_HAS_CERT", "compare_type": "CONTAINS", "value": "True"},
        "only support EQUAL_TO",
    ),
    (
        {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True", "key": "k"},
        "do not use a key",
    ),
    (
        {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "-1"},
        "non-negative integer",
    ),
    (
        {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "ok"},
        "non-negative integer",
    ),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "REGEX", "value": "0"}, "only support EQUAL_TO"),
    ({"type": "SSL_DN_FIELD", "value": "x"}, "need a key"),
    ({"type": "SSL_DN_FIELD", "key": "1CN", "value": "x"}, "distinguished name"),
    ({"type": "SSL_DN_FIELD", "key": "C N", "value": "x"}, "distinguished name"),
    ({"l7policy_id": MISSING}, "Unknown attribute"),
]


def test_create_refuses_bad_input(shared: tuple[Api, dict[str, Any]]) -> None:
    api, made = shared
    path = f"{P}/{made['policy']['id']}/rules"
    before = api.get(path)
    for fields, fragment in BAD_RULES:
        fault = _rule(api, made["policy"], status=400, **fields)
        assert fragment in fault["faultstring"], (fields, fault)
    assert api.get(path) == before
    assert _status(api, f"{P}/{made['policy']['id']}", "l7policy") == "ACTIVE"
    api.post(
        f"{P}/{MISSING}/rules",
        {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}},
        status=404,
    )


def test_update_refuses_bad_input(shared: tuple[Api, dict[str, Any]]) -> None:
    api, made = shared
    path = f"{P}/{made['policy']['id']}/rules/{made['rule']['id']}"
    before = api.get(path)
    for fields, fragment in (
        ({"type": None}, "cannot be null"),
        ({"value": None}, "cannot be null"),
        ({"key": None}, "need a key"),
        ({"value": "two words"}, "double quotes"),
        ({"type": "COOKIE", "value": "a;b"}, "cookie value"),
        ({"type": "SSL_CONN_HAS_CERT"}, "'True'"),
        ({"type": "SSL_VERIFY_RESULT", "value": "x"}, "non-negative integer"),
        ({"compare_type": "REGEX", "value": "[z-a]"}, "regular expression"),
        ({"admin_state_up": None}, "admin_state_up"),
        ({"l7policy_id": MISSING}, "Unknown attribute"),
    ):
        fault = api.put(path, {"rule": fields}, status=400)
        assert fragment in fault["faultstring"], (fields, fault)
        assert api.get(path) == before


def test_rules_are_found_only_under_their_policy(
    shared: tuple[Api, dict[str, Any]], api: Api
) -> None:
    shared_api, made = shared
    rule_id = made["rule"]["id"]
    other = _policy(shared_api)
    for path in (f"{P}/{other['id']}/rules/{rule_id}", f"{P}/{MISSING}/rules/{rule_id}"):
        shared_api.get(path, status=404)
        shared_api.put(path, {"rule": {"value": "3"}}, status=404)
        shared_api.delete(path, status=404)
    shared_api.get(f"{P}/{MISSING}/rules", status=404)
    assert shared_api.get(f"{P}/{other['id']}/rules") == {"rules": [], "rules_links": []}


def test_fifty_rules_per_policy(api: Api) -> None:
    rules = [{"type": "PATH", "compare_type": "EQUAL_TO", "value": f"/r{i}"} for i in range(50)]
    policy = _policy(api, rules=rules)
    assert len(policy["rules"]) == 50
    fault = _rule(api, policy, status=409)
    assert "Too many rules on L7 policy" in fault["faultstring"]
    li = policy["listener_id"]
    fault = api.post(
        P,
        {"l7policy": {"listener_id": li, "action": "REJECT", "rules": [*rules, rules[0]]}},
        status=409,
    )
    assert "Too many rules" in fault["faultstring"]
    assert len(api.get(P)["l7policies"]) == 1
    # Room again once one is gone.
    first = api.get(f"{P}/{policy['id']}/rules?limit=1")["rules"][0]
    api.delete(f"{P}/{policy['id']}/rules/{first['id']}")
    api.settle()
    _rule(api, policy)


def test_changes_are_refused_while_the_tree_is_pending(api: Api) -> None:
    policy = _policy(api)
    path = f"{P}/{policy['id']}/rules"
    rule = _rule(api, policy)
    fault = _rule(api, policy, status=409)
    assert "is immutable and cannot be updated" in fault["faultstring"]
    api.put(f"{path}/{rule['id']}", {"rule": {"value": "/b"}}, status=409)
    api.delete(f"{path}/{rule['id']}", status=409)
    api.put(f"{P}/{policy['id']}", {"l7policy": {"name": "x"}}, status=409)
    api.settle()
    api.put(f"{path}/{rule['id']}", {"rule": {"value": "/b"}})
    _rule(api, policy, status=409)
    api.settle()
    assert api.get(f"{path}/{rule['id']}")["rule"]["value"] == "/b"


def test_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_L7RULE_QUOTA="2")
    policy = _policy(a, rules=[{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a"}])
    _rule(a, policy)
    a.settle()
    fault = _rule(a, policy, status=403)
    assert fault["faultstring"] == "Quota has been met for resources: l7rule"
    assert len(a.get(f"{P}/{policy['id']}/rules")["rules"]) == 2
    # Rules nested in a new policy count too; nothing of that policy is kept.
    nested = {
        "listener_id": policy["listener_id"],
        "action": "REJECT",
        "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/b"}],
    }
    fault = a.post(P, {"l7policy": nested}, status=403)
    assert fault["faultstring"] == "Quota has been met for resources: l7rule"
    assert len(a.get(P)["l7policies"]) == 1


def test_list_filters_sort_pages_and_fields(api: Api) -> None:
    policy = _policy(api)
    path = f"{P}/{policy['id']}/rules"
    made = []
    for value, rtype, invert, tags in (
        ("/a", "PATH", False, ["x"]),
        ("b.example.com", "HOST_NAME", True, ["x", "y"]),
        ("/c", "PATH", True, ["y"]),
    ):
        made.append(
            _rule(
                api,
                policy,
                value=value,
                type=rtype,
                invert=invert,
                compare_type="EQUAL_TO",
                tags=tags,
            )
        )
        api.settle()
    ids = [r["id"] for r in made]

    def values(query: str) -> list[str]:
        return [r["value"] for r in api.get(f"{path}?{query}")["rules"]]

    assert values("type=PATH") == ["/a", "/c"]
    assert values("invert=true&compare_type=EQUAL_TO") == ["b.example.com", "/c"]
    assert values("sort=value:desc") == ["b.example.com", "/c", "/a"]
    assert values("tags=x,y") == ["b.example.com"]
    assert values("tags-any=y&not-tags=x") == ["/c"]
    api.get(f"{path}?l7policy_id={policy['id']}", status=400)
    api.get(f"{path}?sort=bogus", status=400)

    page = api.get(f"{path}?limit=2")
    assert [r["id"] for r in page["rules"]] == ids[:2]
    assert [link["rel"] for link in page["rules_links"]] == ["next"]
    assert [r["id"] for r in api.get(f"{path}?limit=2&marker={ids[1]}")["rules"]] == ids[2:]
    assert api.get(f"{path}?fields=id,type")["rules"][0] == {"id": ids[0], "type": "PATH"}
    assert api.get(f"{path}/{ids[0]}?fields=value")["rule"] == {"value": "/a"}
