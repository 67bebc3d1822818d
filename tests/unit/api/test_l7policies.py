"""/v2/lbaas/l7policies: actions, redirect pools, positions, validation, locking, quota."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, build_api

P = "/v2/lbaas/l7policies"
MISSING = "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"


def _listener(
    api: Api, lb: dict[str, Any], protocol: str = "HTTP", port: int = 80, **fields: Any
) -> dict[str, Any]:
    body = {"loadbalancer_id": lb["id"], "protocol": protocol, "protocol_port": port, **fields}
    li = api.post("/v2/lbaas/listeners", {"listener": body})["listener"]
    api.settle()
    return li  # type: ignore[no-any-return]


def _pool(api: Api, lb: dict[str, Any], protocol: str = "HTTP") -> dict[str, Any]:
    pool = api.post(
        "/v2/lbaas/pools",
        {
            "pool": {
                "loadbalancer_id": lb["id"],
                "protocol": protocol,
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    api.settle()
    return pool["pool"]  # type: ignore[no-any-return]


def _policy(api: Api, listener: dict[str, Any], *, status: int = 201, **fields: Any) -> Any:
    body = {"listener_id": listener["id"], "action": "REJECT", **fields}
    answer = api.post(P, {"l7policy": body}, status=status)
    return answer["l7policy"] if status == 201 else answer


def _status(api: Api, path: str, key: str) -> str:
    return api.get(path)[key]["provisioning_status"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One app with an HTTP and a TCP listener, pools on the LB and one on another LB, and a
    settled REDIRECT_TO_URL policy; shared by tests that must change nothing."""
    a = build_api(tmp_path_factory.mktemp("l7policies"))
    lb, other = a.make_lb(), a.make_lb()
    out: dict[str, Any] = {
        "api": a,
        "lb": lb,
        "http": _listener(a, lb),
        "tcp": _listener(a, lb, "TCP", 81),
        "http_pool": _pool(a, lb),
        "tcp_pool": _pool(a, lb, "TCP"),
        "foreign_pool": _pool(a, other),
    }
    out["policy"] = _policy(
        a, out["http"], action="REDIRECT_TO_URL", redirect_url="https://example.com/"
    )
    a.settle()
    yield out
    a.client.close()
    a.deps.db.dispose()


def test_create_settle_update_delete(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    pool = _pool(api, lb)
    policy = _policy(
        api,
        li,
        name="to-pool",
        action="REDIRECT_TO_POOL",
        redirect_pool_id=pool["id"],
        tags=["x"],
        rules=[{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}],
    )
    assert policy["provisioning_status"] == "PENDING_CREATE"
    assert policy["operating_status"] == "OFFLINE"
    assert (policy["listener_id"], policy["redirect_pool_id"], policy["position"]) == (
        li["id"],
        pool["id"],
        1,
    )
    assert policy["redirect_http_code"] is None and policy["redirect_url"] is None
    assert len(policy["rules"]) == 1 and policy["tags"] == ["x"]
    assert policy["tenant_id"] == policy["project_id"] == api.project
    assert _status(api, f"/v2/lbaas/listeners/{li['id']}", "listener") == "PENDING_UPDATE"
    assert _status(api, f"/v2/lbaas/loadbalancers/{lb['id']}", "loadbalancer") == "PENDING_UPDATE"
    api.settle()
    assert _status(api, f"{P}/{policy['id']}", "l7policy") == "ACTIVE"
    assert _status(api, f"/v2/lbaas/listeners/{li['id']}", "listener") == "ACTIVE"
    assert api.get(f"/v2/lbaas/listeners/{li['id']}")["listener"]["l7policies"] == [
        {"id": policy["id"]}
    ]

    # Switching action drops the old action's fields and fills the new one's default code.
    up = api.put(
        f"{P}/{policy['id']}",
        {
            "l7policy": {
                "action": "REDIRECT_PREFIX",
                "redirect_prefix": "https://example.com",
                "admin_state_up": False,
                "name": None,
            }
        },
    )["l7policy"]
    assert up["provisioning_status"] == "PENDING_UPDATE"
    assert (
        up["action"],
        up["redirect_prefix"],
        up["redirect_pool_id"],
        up["redirect_http_code"],
        up["admin_state_up"],
        up["name"],
    ) == ("REDIRECT_PREFIX", "https://example.com", None, 302, False, None)
    api.settle()
    up = api.put(f"{P}/{policy['id']}", {"l7policy": {"redirect_http_code": 308}})["l7policy"]
    assert up["redirect_http_code"] == 308
    api.settle()
    up = api.put(f"{P}/{policy['id']}", {"l7policy": {"action": "REJECT"}})["l7policy"]
    assert (up["redirect_prefix"], up["redirect_http_code"]) == (None, None)
    api.settle()

    api.delete(f"{P}/{policy['id']}")
    assert _status(api, f"{P}/{policy['id']}", "l7policy") == "PENDING_DELETE"
    api.settle()
    api.get(f"{P}/{policy['id']}", status=404)
    api.get(f"{P}/{policy['id']}/rules", status=404)
    api.delete(f"{P}/{policy['id']}", status=404)
    assert _status(api, f"/v2/lbaas/listeners/{li['id']}", "listener") == "ACTIVE"


def test_v2_0_alias(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    policy = api.post(
        "/v2.0/lbaas/l7policies", {"l7policy": {"listener_id": li["id"], "action": "REJECT"}}
    )["l7policy"]
    api.settle()
    assert api.get(f"/v2.0/lbaas/l7policies/{policy['id']}")["l7policy"]["action"] == "REJECT"
    api.delete(f"/v2.0/lbaas/l7policies/{policy['id']}")


def _bad_creates(t: dict[str, Any]) -> list[tuple[dict[str, Any], int, str]]:
    url = "https://example.com/"
    return [
        ({"action": "DROP"}, 400, "action"),
        ({"listener_id": t["tcp"]["id"]}, 400, "HTTP and TERMINATED_HTTPS"),
        ({"listener_id": MISSING}, 404, "Listener"),
        ({"listener_id": "nope"}, 400, "listener_id"),
        ({"action": "REDIRECT_TO_URL"}, 400, "needs a redirect_url"),
        ({"action": "REDIRECT_PREFIX"}, 400, "needs a redirect_prefix"),
        ({"action": "REDIRECT_TO_POOL"}, 400, "needs a redirect_pool_id"),
        ({"redirect_url": url}, 400, "does not use redirect_url"),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": url, "redirect_prefix": url},
            400,
            "does not use redirect_prefix",
        ),
        (
            {
                "action": "REDIRECT_TO_URL",
                "redirect_url": url,
                "redirect_pool_id": t["http_pool"]["id"],
            },
            400,
            "does not use redirect_pool_id",
        ),
        ({"redirect_http_code": 301}, 400, "redirect code"),
        (
            {
                "action": "REDIRECT_TO_POOL",
                "redirect_pool_id": t["http_pool"]["id"],
                "redirect_http_code": 302,
            },
            400,
            "redirect code",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": url, "redirect_http_code": 305},
            400,
            "redirect_http_code",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": "ftp://example.com/"},
            400,
            "http:// or https://",
        ),
        ({"action": "REDIRECT_TO_URL", "redirect_url": "/relative"}, 400, "http://"),
        ({"action": "REDIRECT_TO_URL", "redirect_url": "https://"}, 400, "http://"),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": "https://a.example/\nbind :1"},
            400,
            "redirect_url",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": "https://a.example/\u2028x"},
            400,
            "redirect_url",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": "https://a.example/ x"},
            400,
            "redirect_url",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": 'https://a.example/"x'},
            400,
            "redirect_url",
        ),
        (
            {"action": "REDIRECT_TO_URL", "redirect_url": "https://a.example/" + "x" * 240},
            400,
            "redirect_url",
        ),
        (
            {"action": "REDIRECT_PREFIX", "redirect_prefix": "https://a.example\t"},
            400,
            "redirect_prefix",
        ),
        (
            {"action": "REDIRECT_TO_POOL", "redirect_pool_id": t["tcp_pool"]["id"]},
            400,
            "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'",
        ),
        ({"action": "REDIRECT_TO_POOL", "redirect_pool_id": t["foreign_pool"]["id"]}, 404, "Pool"),
        ({"action": "REDIRECT_TO_POOL", "redirect_pool_id": MISSING}, 404, "Pool"),
        ({"position": 0}, 400, "position"),
        ({"position": 2147483648}, 400, "position"),
        ({"name": "a\nb"}, 400, "name"),
        (
            {"rules": [{"type": "PATH", "compare_type": "REGEX", "value": "("}]},
            400,
            "regular expression",
        ),
        (
            {"rules": [{"type": "HEADER", "compare_type": "EQUAL_TO", "value": "v"}]},
            400,
            "need a key",
        ),
        ({"provisioning_status": "ACTIVE"}, 400, "Unknown attribute"),
    ]


def test_create_refuses_bad_input(tree: dict[str, Any]) -> None:
    api = tree["api"]
    before = api.get(P)
    for fields, status, fragment in _bad_creates(tree):
        fault = _policy(api, tree["http"], status=status, **fields)
        assert fragment in fault["faultstring"], (fields, fault)
    assert api.get(P) == before
    assert _status(api, f"/v2/lbaas/loadbalancers/{tree['lb']['id']}", "loadbalancer") == "ACTIVE"
    assert api.get("/v2/lbaas/l7policies?fields=id")["l7policies"] == [{"id": tree["policy"]["id"]}]


def test_update_refuses_bad_input(tree: dict[str, Any]) -> None:
    api, policy = tree["api"], tree["policy"]
    path = f"{P}/{policy['id']}"
    before = api.get(path)
    for fields, status, fragment in (
        ({"listener_id": tree["tcp"]["id"]}, 400, "Unknown attribute"),
        ({"action": None}, 400, "cannot be null"),
        ({"admin_state_up": None}, 400, "admin_state_up"),
        ({"redirect_url": None}, 400, "needs a redirect_url"),
        ({"redirect_url": "javascript:alert(1)"}, 400, "http://"),
        ({"redirect_prefix": "https://example.com"}, 400, "does not use redirect_prefix"),
        ({"redirect_http_code": 200}, 400, "redirect_http_code"),
        ({"action": "REDIRECT_TO_POOL"}, 400, "needs a redirect_pool_id"),
        (
            {"action": "REDIRECT_TO_POOL", "redirect_pool_id": tree["tcp_pool"]["id"]},
            400,
            "invalid while the listener protocol",
        ),
        (
            {"action": "REDIRECT_TO_POOL", "redirect_pool_id": tree["foreign_pool"]["id"]},
            404,
            "Pool",
        ),
        (
            {"action": "REJECT", "redirect_url": "https://example.com/"},
            400,
            "does not use redirect_url",
        ),
        ({"action": "REJECT", "redirect_http_code": 301}, 400, "redirect code"),
        ({"position": -1}, 400, "position"),
    ):
        fault = api.put(path, {"l7policy": fields}, status=status)
        assert fragment in fault["faultstring"], (fields, fault)
        assert api.get(path) == before


def test_positions_stay_contiguous(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)

    def make(**fields: Any) -> str:
        policy = _policy(api, li, **fields)
        api.settle()
        return policy["id"]  # type: ignore[no-any-return]

    def order() -> list[str]:
        listed = api.get(f"{P}?listener_id={li['id']}&sort=position")["l7policies"]
        assert [p["position"] for p in listed] == list(range(1, len(listed) + 1))
        return [p["id"] for p in listed]

    a = make()
    b = make()
    c = make(position=1)  # inserting at the front shifts the rest
    assert order() == [c, a, b]
    d = make(position=99)  # beyond the end: appended as N+1
    assert order() == [c, a, b, d]
    assert api.get(f"{P}/{d}")["l7policy"]["position"] == 4
    api.put(f"{P}/{d}", {"l7policy": {"position": 2}})
    api.settle()
    assert order() == [c, d, a, b]
    api.put(f"{P}/{c}", {"l7policy": {"position": 4}})
    api.settle()
    assert order() == [d, a, b, c]
    api.delete(f"{P}/{a}")
    assert order() == [d, b, c, a]  # the others are renumbered at once, a goes last
    api.settle()
    assert order() == [d, b, c]
    assert make() == order()[-1]


def test_changes_are_refused_while_the_tree_is_pending(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    first = _policy(api, li)
    fault = _policy(api, li, status=409)
    assert "is immutable and cannot be updated" in fault["faultstring"]
    api.put(f"{P}/{first['id']}", {"l7policy": {"name": "x"}}, status=409)
    api.delete(f"{P}/{first['id']}", status=409)
    api.settle()
    api.put(f"{P}/{first['id']}", {"l7policy": {"name": "x"}})
    api.delete(f"{P}/{first['id']}", status=409)
    api.settle()
    api.delete(f"{P}/{first['id']}")
    api.put(f"{P}/{first['id']}", {"l7policy": {"name": "y"}}, status=409)


def test_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_L7POLICY_QUOTA="1")
    li = _listener(a, a.make_lb())
    _policy(a, li)
    a.settle()
    fault = _policy(a, li, status=403)
    assert fault["faultstring"] == "Quota has been met for resources: l7policy"
    assert len(a.get(P)["l7policies"]) == 1


def test_redirect_pool_given_inline(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    policy = _policy(
        api,
        li,
        action="REDIRECT_TO_POOL",
        redirect_pool={"name": "inline", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
    )
    api.settle()
    pools = api.get("/v2/lbaas/pools")["pools"]
    assert [(p["name"], p["id"]) for p in pools] == [("inline", policy["redirect_pool_id"])]
    assert pools[0]["provisioning_status"] == "ACTIVE"
    fault = _policy(
        api,
        li,
        status=400,
        action="REDIRECT_TO_POOL",
        redirect_pool_id=pools[0]["id"],
        redirect_pool={"name": "x", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
    )
    assert "not both" in fault["faultstring"]


def test_list_filters_sort_pages_and_fields(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    made = []
    for name, action, tags in (
        ("p1", "REJECT", ["a"]),
        ("p2", "REDIRECT_TO_URL", ["a", "b"]),
        ("p3", "REJECT", ["b"]),
    ):
        extra: dict[str, Any] = {}
        if action != "REJECT":
            extra["redirect_url"] = "http://example.com/"
        made.append(_policy(api, li, name=name, action=action, tags=tags, **extra))
        api.settle()
    ids = [p["id"] for p in made]

    def names(query: str) -> list[str]:
        return [p["name"] for p in api.get(f"{P}?{query}")["l7policies"]]

    assert names("action=REJECT") == ["p1", "p3"]
    assert names(f"listener_id={li['id']}&redirect_http_code=302") == ["p2"]
    assert names("admin_state_up=true&position=3") == ["p3"]
    assert names("sort=position:desc") == ["p3", "p2", "p1"]
    assert names("tags=a,b") == ["p2"]
    assert names("not-tags-any=b") == ["p1"]
    api.get(f"{P}?bogus=1", status=400)
    api.get(f"{P}?sort=rules:asc", status=400)

    page = api.get(f"{P}?limit=2&sort=position")
    assert [p["id"] for p in page["l7policies"]] == ids[:2]
    assert [link["rel"] for link in page["l7policies_links"]] == ["next"]
    page = api.get(f"{P}?limit=2&sort=position&marker={ids[1]}")
    assert [p["id"] for p in page["l7policies"]] == ids[2:]

    assert api.get(f"{P}?fields=id,position")["l7policies"][0] == {"id": ids[0], "position": 1}
    assert api.get(f"{P}/{ids[1]}?fields=action")["l7policy"] == {"action": "REDIRECT_TO_URL"}
