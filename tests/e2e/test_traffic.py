"""Real traffic through one load balancer, changed test by test (issue 3, "How we will know"):
a listener without a pool, L7 routing, session persistence, allowed_cidrs and the PROMETHEUS
listener. Members are the testbed's HTTP servers in namespaces of their own on the tenant
bridge (bench/testbed.py); the client is the host, plus one client namespace on the bridge.

Each test adds a listener of its own on its own port, so the tests do not depend on one
another; they share the load balancer (one amphora) to keep the module short.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bench.testbed import Testbed

from tests.e2e.traffic_lb import Lb, http, shared_lb

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lb(bed: Testbed) -> Iterator[Lb]:
    yield from shared_lb(bed, "traffic")


def test_listener_without_pool_answers_503(lb: Lb) -> None:
    lb.listener(8001)
    with http() as c:
        for _ in range(3):
            assert c.get(f"http://{lb.vip}:8001/").status_code == 503, lb.diagnose()


def test_l7_policies_route_redirect_and_reject(lb: Lb) -> None:
    m0, m1 = lb.bed.members[:2]
    listener = lb.listener(8002)
    lb.pool([m0], listener_id=listener["id"])  # the default pool: member0 only
    other = lb.pool([m1])                      # reached only through policies: member1

    def policy(position: int, action: str, rules: list[dict[str, Any]], **extra: Any) -> None:
        lb.change("POST", "l7policies", {"l7policy": {
            "listener_id": listener["id"], "position": position, "action": action,
            "rules": rules, **extra}})

    def path_starts(value: str, invert: bool = False) -> dict[str, Any]:
        return {"type": "PATH", "compare_type": "STARTS_WITH", "value": value,
                "invert": invert}

    policy(1, "REJECT", [path_starts("/forbidden")])
    policy(2, "REDIRECT_TO_URL", [path_starts("/old")],
           redirect_url="http://example.invalid/new", redirect_http_code=301)
    policy(3, "REDIRECT_TO_URL", [path_starts("/temp")], redirect_url="http://example.invalid/t")
    policy(4, "REDIRECT_TO_POOL", [{"type": "HEADER", "key": "X-Route",
                                    "compare_type": "EQUAL_TO", "value": "b"}],
           redirect_pool_id=other["id"])
    policy(5, "REDIRECT_TO_POOL", [path_starts("/b/")], redirect_pool_id=other["id"])
    # Two rules, ANDed; the second inverted: /inv is refused unless X-Allow is "yes".
    policy(6, "REJECT", [path_starts("/inv"),
                         {"type": "HEADER", "key": "X-Allow", "compare_type": "EQUAL_TO",
                          "value": "yes", "invert": True}])

    base = f"http://{lb.vip}:8002"
    with http() as c:
        assert {c.get(f"{base}/").text for _ in range(4)} == {"member0"}, lb.diagnose()
        assert c.get(f"{base}/forbidden/x").status_code == 403
        moved = c.get(f"{base}/old/page")
        assert (moved.status_code, moved.headers["location"]) == (
            301, "http://example.invalid/new")
        temporary = c.get(f"{base}/temp")
        assert (temporary.status_code, temporary.headers["location"]) == (
            302, "http://example.invalid/t")
        assert {c.get(f"{base}/", headers={"X-Route": "b"}).text for _ in range(4)} == {
            "member1"}
        assert c.get(f"{base}/", headers={"X-Route": "c"}).text == "member0"
        assert c.get(f"{base}/b/x").text == "member1"
        assert c.get(f"{base}/bx").text == "member0"
        assert c.get(f"{base}/inv").status_code == 403
        allowed = c.get(f"{base}/inv", headers={"X-Allow": "yes"})
        assert (allowed.status_code, allowed.text) == (200, "member0")
        # First match wins: /forbidden with the pool header is still refused.
        assert c.get(f"{base}/forbidden", headers={"X-Route": "b"}).status_code == 403


def test_source_ip_persistence_sticks(lb: Lb) -> None:
    listener = lb.listener(8003)
    lb.pool(lb.bed.members[:2], listener_id=listener["id"],
            session_persistence={"type": "SOURCE_IP"})
    with http() as c:
        seen = Counter(c.get(f"http://{lb.vip}:8003/", headers={"Connection": "close"}).text
                       for _ in range(20))
    assert len(seen) == 1 and sum(seen.values()) == 20, seen


def test_http_cookie_persistence_sticks(lb: Lb) -> None:
    listener = lb.listener(8004)
    lb.pool(lb.bed.members[:2], listener_id=listener["id"],
            session_persistence={"type": "HTTP_COOKIE"})
    url = f"http://{lb.vip}:8004/"
    with http() as c:
        first = c.get(url)
        cookie = first.headers.get("set-cookie", "")
        assert re.match(r"SRV=[0-9a-f-]{36}", cookie), first.headers
        name, _, value = cookie.split(";")[0].partition("=")
        # Without the cookie, requests alternate; with it, they all go to one member.
        without = []
        for _ in range(6):
            c.cookies.clear()
            without.append(c.get(url).text)
        assert set(without) == {"member0", "member1"}
        with_cookie = set()
        for _ in range(10):
            c.cookies.clear()
            with_cookie.add(c.get(url, headers={"Cookie": f"{name}={value}"}).text)
    assert with_cookie == {first.text}


def test_app_cookie_persistence_sticks(lb: Lb) -> None:
    """The member sets APPSESSION; HAProxy learns which member set which value and sends
    requests carrying it there."""
    listener = lb.listener(8007)
    lb.pool(lb.bed.members[:2], listener_id=listener["id"],
            session_persistence={"type": "APP_COOKIE", "cookie_name": "APPSESSION"})
    url = f"http://{lb.vip}:8007/app-cookie"
    learned = {}
    with http() as c:
        for _ in range(4):  # round robin: both members set their cookie
            c.cookies.clear()
            r = c.get(url)
            learned[r.text] = r.headers["set-cookie"].split(";")[0]
        assert set(learned) == {"member0", "member1"}, learned
        for member, cookie in learned.items():
            answers = set()
            for _ in range(6):
                c.cookies.clear()
                answers.add(c.get(url, headers={"Cookie": cookie}).text)
            assert answers == {member}, (cookie, answers)


def test_allowed_cidrs_blocks_others(lb: Lb) -> None:
    bed = lb.bed
    other = next((m for m in bed.members if m.name == "traffic-client"), None)
    if other is None:
        hosts = list(bed.tenant_net.hosts())
        other = bed.add_namespace("traffic-client", str(hosts[199]))
    listener = lb.listener(8005, allowed_cidrs=[f"{bed.host_address}/32"])
    lb.pool(bed.members[:1], listener_id=listener["id"])
    url = f"http://{lb.vip}:8005/"

    def from_host() -> str:
        # A new connection each time: allowed_cidrs is checked when a connection opens, and
        # connections opened before a change keep their verdict.
        with http() as c:
            return c.get(url).text

    assert from_host() == "member0"
    assert bed.http_in(other.namespace, url, timeout=2)[0] == 0  # refused
    # Swap: now only the client namespace may connect.
    lb.change("PUT", f"listeners/{listener['id']}",
              {"listener": {"allowed_cidrs": [f"{other.address}/32"]}})
    assert bed.http_in(other.namespace, url, timeout=2) == (200, "member0")
    with pytest.raises(httpx.TransportError):
        from_host()
    # A network that contains both lets both in.
    lb.change("PUT", f"listeners/{listener['id']}",
              {"listener": {"allowed_cidrs": [str(bed.tenant_net)]}})
    assert from_host() == "member0"
    assert bed.http_in(other.namespace, url, timeout=2) == (200, "member0")


def test_prometheus_listener_answers_octavia_names(lb: Lb) -> None:
    listener = lb.listener(8006, protocol="PROMETHEUS")
    url = f"http://{lb.vip}:8006/metrics"
    with http() as c:
        # Some traffic first, so that counters of the other listeners move.
        c.get(f"http://{lb.vip}:8001/")
        deadline = time.monotonic() + 5
        while (r := c.get(url)).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)  # the metrics proxy may still be starting
        assert r.status_code == 200, (r.status_code, r.text[:500], lb.diagnose())
        assert r.headers["content-type"].startswith("text/plain")
        assert c.get(f"http://{lb.vip}:8006/other").status_code == 404
    names = {line.split("{")[0].split(" ")[0] for line in r.text.splitlines()
             if line and not line.startswith("#")}
    assert names, r.text[:500]
    assert all(n.startswith("octavia_") for n in names), sorted(
        n for n in names if not n.startswith("octavia_"))
    for wanted in ("octavia_loadbalancer_cpu", "octavia_loadbalancer_memory",
                   "octavia_loadbalancer_current_connections", "octavia_listener_status",
                   "octavia_listener_http_responses_total", "octavia_pool_status",
                   "octavia_member_status", "octavia_member_weight",
                   "octavia_memory_pool_used_bytes"):
        assert wanted in names, wanted
    # Labels use Octavia's words, and the 503 answered on :8001 was counted.
    assert re.search(r'octavia_listener_http_responses_total\{listener="[0-9a-f-]{36}",'
                     r'code="5xx"\} [1-9]', r.text), r.text
    assert re.search(r'octavia_member_weight\{pool="[0-9a-f-]{36}:[0-9a-f-]{36}",'
                     r'member="[0-9a-f-]{36}"\} 1', r.text)
    assert f'listener="{listener["id"]}"' in r.text
    assert "statera-prometheus" not in r.text  # the internal plumbing is not reported
