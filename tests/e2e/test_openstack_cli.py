"""The stock ``openstack loadbalancer …`` CLI (python-openstackclient + python-octaviaclient)
against a real ``statera up``: the whole life of a load balancer, as a user would type it.

Cost control: the CLI spends seconds importing itself before each command, so most commands
run through ``Statera.cli_batch`` (one process, many commands, per-command output and errors),
commands with JSON arguments run as their own process, in the background while a batch runs,
and octaviaclient's ``--wait`` polls every 3 s. Two scenarios, noauth and http_basic.

Where the CLI cannot do a step because Statera answers wrongly, the step is recorded as a
product bug, done over plain HTTP so the rest of the scenario still runs, and the test fails
at the end with every bug it saw.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CliResult, Statera

pytestmark = pytest.mark.slow

V = "/v2/lbaas"
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


def lb_cmd(*args: str) -> list[str]:
    return ["loadbalancer", *args]


def _statuses(tree: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, name or id, provisioning_status) of every node of a status tree."""
    out: list[tuple[str, str, str]] = []

    def walk(kind: str, node: dict[str, Any]) -> None:
        out.append((kind, node.get("name") or node.get("id", "?"),
                    node.get("provisioning_status", "?")))
        for key, child_kind in (("listeners", "listener"), ("pools", "pool"),
                                ("members", "member"), ("l7policies", "l7policy"),
                                ("rules", "l7rule")):
            for child in node.get(key) or []:
                walk(child_kind, child)
        for hm_key in ("health_monitor", "healthmonitor"):
            if node.get(hm_key):
                walk(hm_key, node[hm_key])

    walk("loadbalancer", tree["loadbalancer"])
    return out


def _wait_lb(s: Statera, lb_id: str, user: tuple[str, str] | None) -> dict[str, Any]:
    with s.http(user) as client:
        def settled() -> dict[str, Any] | None:
            lb = client.get(f"{V}/loadbalancers/{lb_id}").json()["loadbalancer"]
            return None if lb["provisioning_status"] in PENDING else lb
        return s.wait_until(f"load balancer {lb_id} to settle", settled)  # type: ignore[no-any-return]


class Bugs:
    """Product bugs seen on the way; the test fails with all of them at the end."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, text: str) -> None:
        self.found.append(text)

    def check(self) -> None:
        assert not self.found, "Statera answered the stock CLI wrongly:\n- " + "\n- ".join(
            self.found)


def build_and_inspect(s: Statera, user: tuple[str, str] | None,
                      redirect_to_pool: bool = True) -> dict[str, Any]:
    """Batch 1: the tree, one object at a time with --wait, then every read command. The L7
    policy redirects to a second pool, or (``redirect_to_pool=False``: one --wait less) to a
    URL."""
    if redirect_to_pool:
        second_pool = lb_cmd("pool", "create", "--name", "alt", "--loadbalancer", "web",
                             "--protocol", "HTTP", "--lb-algorithm", "LEAST_CONNECTIONS",
                             "--wait", "-f", "json")
        redirect = ["--action", "REDIRECT_TO_POOL", "--redirect-pool", "alt"]
    else:
        second_pool = lb_cmd("pool", "list", "--loadbalancer", "web", "-f", "json")
        redirect = ["--action", "REDIRECT_TO_URL", "--redirect-url", "https://example.com/",
                    "--redirect-http-code", "301"]
    results = s.cli_batch([
        lb_cmd("create", "--name", "web", "--vip-subnet-id", "public-subnet", "--tag", "e2e",
               "--tag", "web", "--wait", "-f", "json"),
        lb_cmd("listener", "create", "--name", "http", "--protocol", "HTTP", "--protocol-port",
               "80", "--wait", "web", "-f", "json"),
        lb_cmd("pool", "create", "--name", "app", "--listener", "http", "--protocol", "HTTP",
               "--lb-algorithm", "ROUND_ROBIN", "--wait", "-f", "json"),
        second_pool,
        lb_cmd("member", "create", "--name", "m1", "--address", "10.210.0.50",
               "--protocol-port", "8080", "--wait", "app", "-f", "json"),
        lb_cmd("member", "create", "--name", "m2", "--address", "10.210.0.51",
               "--protocol-port", "8080", "--weight", "2", "--wait", "app", "-f", "json"),
        lb_cmd("healthmonitor", "create", "--name", "hm", "--delay", "5", "--timeout", "3",
               "--max-retries", "3", "--type", "HTTP", "--url-path", "/health", "--wait", "app",
               "-f", "json"),
        lb_cmd("l7policy", "create", "--name", "to-alt", *redirect, "--wait", "http", "-f",
               "json"),
        lb_cmd("l7rule", "create", "--type", "PATH", "--compare-type", "STARTS_WITH",
               "--value", "/api", "--wait", "to-alt", "-f", "json"),
        lb_cmd("show", "web", "-f", "json"),
        lb_cmd("status", "show", "web"),
        lb_cmd("stats", "show", "web", "-f", "json"),
        lb_cmd("listener", "stats", "show", "http", "-f", "json"),
        lb_cmd("list", "--tags", "e2e", "-f", "json"),
        lb_cmd("l7policy", "show", "to-alt", "-f", "json"),
    ], user=user)
    (lb, listener, app, alt, m1, m2, hm, policy, rule, shown, status, lb_stats,
     listener_stats, tagged, policy_shown) = (r.json() for r in results)

    if not redirect_to_pool:
        assert [p["id"] for p in alt] == [app["id"]], alt
        alt = None
    for what, obj in (("loadbalancer", lb), ("listener", listener), ("pool app", app),
                      ("pool alt", alt or app), ("member m1", m1), ("member m2", m2),
                      ("healthmonitor", hm), ("l7policy", policy), ("l7rule", rule),
                      ("loadbalancer show", shown)):
        assert obj["provisioning_status"] == "ACTIVE", f"{what} after --wait: {obj}"
    assert lb["vip_address"].startswith("10.210.0."), lb
    assert sorted(lb["tags"]) == ["e2e", "web"]
    assert listener["protocol_port"] == 80 and app["lb_algorithm"] == "ROUND_ROBIN"
    assert {m1["address"], m2["address"]} == {"10.210.0.50", "10.210.0.51"}
    assert m2["weight"] == 2 and hm["url_path"] == "/health"
    if alt is not None:
        assert (policy["action"], policy["redirect_pool_id"]) == ("REDIRECT_TO_POOL", alt["id"])
    else:
        assert (policy["action"], policy["redirect_url"], policy["redirect_http_code"]) == (
            "REDIRECT_TO_URL", "https://example.com/", 301)
    assert (rule["type"], rule["compare_type"], rule["value"]) == ("PATH", "STARTS_WITH", "/api")
    assert rule["id"] in str(policy_shown["rules"])
    assert {p["id"] for p in shown["pools"]} == {app["id"], (alt or app)["id"]}

    nodes = _statuses(status)
    assert {kind for kind, _, _ in nodes} >= {"loadbalancer", "listener", "pool", "member",
                                               "l7policy", "l7rule", "health_monitor"}
    assert len([n for n in nodes if n[0] == "member"]) == 2
    assert [n for n in nodes if n[2] != "ACTIVE"] == [], nodes
    for stats in (lb_stats, listener_stats):
        assert set(stats) >= {"active_connections", "bytes_in", "bytes_out",
                              "request_errors", "total_connections"}, stats
    assert [x["name"] for x in tagged] == ["web"]
    return {"lb": lb, "listener": listener, "app": app, "alt": alt}


def batch_member_update(s: Statera, user: tuple[str, str] | None, lb_id: str,
                        pool_id: str) -> None:
    """The CLI has no batch member update: PUT /pools/{id}/members over HTTP (as OCCM and
    Terraform do) — m1 goes, m2 changes weight, a new member comes."""
    with s.http(user) as client:
        r = client.put(f"{V}/pools/{pool_id}/members", json={"members": [
            {"address": "10.210.0.51", "protocol_port": 8080, "weight": 5, "name": "m2"},
            {"address": "10.210.0.52", "protocol_port": 8080, "name": "m3"}]})
        assert r.status_code == 202, r.text
    assert _wait_lb(s, lb_id, user)["provisioning_status"] == "ACTIVE"


def check_batch_result(members: CliResult) -> None:
    got = {(m["address"], m["weight"], m["provisioning_status"]) for m in members.json()}
    assert got == {("10.210.0.51", 5, "ACTIVE"), ("10.210.0.52", 1, "ACTIVE")}, got


def set_quota(s: Statera, pending: Any, bugs: Bugs, project: str,
              admin: tuple[str, str] | None) -> None:
    """``quota set --loadbalancer 1 <project>``; if the CLI cannot, record why and set it over
    HTTP so that the quota step of the scenario still runs."""
    result = pending.result()
    if result.ok:
        quota = result.json()
        assert quota["load_balancer"] == 1, quota
        return
    bugs.add(
        f"`openstack loadbalancer quota set --loadbalancer 1 {project}` fails: "
        f"{result.stderr.strip()!r}. octaviaclient resolves the project through the identity "
        f"API at the same endpoint (osc identity find_project → GET /projects/{project}, then "
        f"GET /projects?name={project}); Statera answers both 404, and the client gives up. "
        f"It falls back to the literal id only when that lookup answers 403 Forbidden (or "
        f"finds a Keystone-shaped {{\"project\": {{\"id\": …}}}}). `quota reset`, `quota "
        f"show` of a non-UUID project and `loadbalancer create --project` hit the same lookup.")
    with s.http(admin) as client:
        r = client.put(f"{V}/quotas/{project}", json={"quota": {"loadbalancer": 1}})
        assert r.is_success, r.text


def test_cli_noauth_full_scenario(statera_up: Any) -> None:
    s: Statera = statera_up()
    bugs = Bugs()
    # Commands with JSON arguments, and the quota, start now and overlap with batch 1.
    fp = s.cli_start(*lb_cmd("flavorprofile", "create", "--name", "fp1", "--provider",
                             "amphora", "--flavor-data", '{"loadbalancer_topology": "SINGLE"}',
                             "-f", "json"))
    azp = s.cli_start(*lb_cmd("availabilityzoneprofile", "create", "--name", "azp1",
                              "--provider", "amphora", "--availability-zone-data",
                              '{"compute_zone": "nova"}', "-f", "json"))
    quota = s.cli_start(*lb_cmd("quota", "set", "--loadbalancer", "1", "default", "-f", "json"))

    tree = build_and_inspect(s, None)
    lb_id = tree["lb"]["id"]
    batch_member_update(s, None, lb_id, tree["app"]["id"])
    set_quota(s, quota, bugs, "default", None)
    profile, az_profile = fp.result().json(), azp.result().json()
    assert profile["provider_name"] == "amphora" and az_profile["name"] == "azp1"

    catalog = s.cli_batch_start(background=True, commands=[
        lb_cmd("provider", "list", "-f", "json"),
        lb_cmd("flavor", "create", "--name", "small", "--flavorprofile", "fp1",
               "--description", "tiny", "--enable", "-f", "json"),
        lb_cmd("flavor", "list", "-f", "json"),
        lb_cmd("availabilityzone", "create", "--name", "az1", "--availabilityzoneprofile",
               "azp1", "--enable", "-f", "json"),
        lb_cmd("availabilityzone", "list", "-f", "json"),
    ])
    members, over_quota, amphorae, failover, after, deleted, gone = s.cli_batch([
        lb_cmd("member", "list", "app", "-f", "json"),
        lb_cmd("create", "--name", "web2", "--vip-subnet-id", "public-subnet", "-f", "json"),
        lb_cmd("amphora", "list", "--loadbalancer", lb_id, "-f", "json"),
        lb_cmd("failover", "--wait", "web"),
        lb_cmd("show", "web", "-f", "json"),
        lb_cmd("delete", "--cascade", "--wait", "web"),
        lb_cmd("show", "web", "-f", "json"),
    ])
    providers, flavor, flavors, az, azs = catalog.results()
    check_batch_result(members)
    assert not over_quota.ok, f"a second load balancer over a quota of 1: {over_quota.stdout}"
    assert "Quota has been met" in over_quota.stderr and "403" in over_quota.stderr, \
        over_quota.stderr
    assert {p["name"] for p in providers.json()} >= {"amphora"}
    assert flavor.json()["flavor_profile_id"] == profile["id"]
    assert [f["name"] for f in flavors.json()] == ["small"]
    assert az.json()["availability_zone_profile_id"] == az_profile["id"]
    assert [z["name"] for z in azs.json()] == ["az1"]
    amps = amphorae.json()
    assert len(amps) == 1 and amps[0]["loadbalancer_id"] == lb_id, amps
    failover.check()
    assert after.json()["provisioning_status"] == "ACTIVE"
    deleted.check()
    assert not gone.ok and "Unable to locate web" in gone.stderr, (gone.stdout, gone.stderr)
    with s.http() as client:
        assert client.get(f"{V}/loadbalancers/{lb_id}").status_code == 404
        assert client.get(f"{V}/pools/{tree['app']['id']}").status_code == 404
    bugs.check()


ALICE = ("alice", "alice-Pw-1")
BOB = ("bob", "bob-Pw-1")
ROOT = ("root", "root-Pw-1")
PROJECT = "6f1b0c1e8e2d4f7a9b3c5d7e9f1a2b3c"
OTHER = "0a9b8c7d6e5f40312a3b4c5d6e7f8091"


def test_cli_http_basic_full_scenario(statera_up: Any) -> None:
    s: Statera = statera_up(STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    # The database is shared with the running API: users added now are seen at once. The
    # member is added the way an operator would; the others in-process, to save start-ups.
    s.add_users((*ALICE, PROJECT, "member"))
    s.add_users_in_process((*BOB, OTHER, "member"), (*ROOT, "admin-project", "admin"))
    bugs = Bugs()
    wrong = s.cli_start(*lb_cmd("list", "-f", "json"), user=(ALICE[0], "not-the-password"))
    fp = s.cli_start(*lb_cmd("flavorprofile", "create", "--name", "fp1", "--provider",
                             "amphora", "--flavor-data", '{"loadbalancer_topology": "SINGLE"}',
                             "-f", "json"), user=ROOT)
    quota = s.cli_start(*lb_cmd("quota", "set", "--loadbalancer", "1", PROJECT, "-f", "json"),
                        user=ROOT)

    tree = build_and_inspect(s, ALICE, redirect_to_pool=False)
    lb_id = tree["lb"]["id"]
    assert tree["lb"]["project_id"] == PROJECT
    batch_member_update(s, ALICE, lb_id, tree["app"]["id"])
    set_quota(s, quota, bugs, PROJECT, ROOT)
    denied = wrong.result()
    assert not denied.ok and "401" in denied.stderr, denied.stderr
    profile = fp.result().json()

    # The administrator: flavors, amphorae, failover; and what another project sees.
    bob = s.cli_batch_start(user=BOB, commands=[
        lb_cmd("list", "-f", "json"),
        lb_cmd("show", lb_id, "-f", "json"),
    ])
    flavor, amphorae, failover, all_lbs = s.cli_batch([
        lb_cmd("flavor", "create", "--name", "small", "--flavorprofile", "fp1", "--enable",
               "-f", "json"),
        lb_cmd("amphora", "list", "--loadbalancer", lb_id, "-f", "json"),
        lb_cmd("failover", "--wait", lb_id),
        lb_cmd("list", "-f", "json"),
    ], user=ROOT)
    assert flavor.json()["flavor_profile_id"] == profile["id"]
    assert [a["loadbalancer_id"] for a in amphorae.json()] == [lb_id]
    failover.check()
    assert lb_id in {x["id"] for x in all_lbs.json()}
    bob_list, bob_show = bob.results()
    assert bob_list.json() == [], "another project's member sees alice's load balancer"
    assert not bob_show.ok and "403" in bob_show.stderr, (bob_show.stdout, bob_show.stderr)

    (members, over_quota, providers, flavors, amp_denied, failover_denied, defaults,
     deleted, gone) = s.cli_batch([
        lb_cmd("member", "list", "app", "-f", "json"),
        lb_cmd("create", "--name", "web2", "--vip-subnet-id", "public-subnet", "-f", "json"),
        lb_cmd("provider", "list", "-f", "json"),
        lb_cmd("flavor", "list", "-f", "json"),
        lb_cmd("amphora", "list", "-f", "json"),
        lb_cmd("failover", "web"),
        lb_cmd("quota", "defaults", "show", "-f", "json"),
        lb_cmd("delete", "--cascade", "--wait", "web"),
        lb_cmd("show", "web", "-f", "json"),
    ], user=ALICE)
    check_batch_result(members)
    assert not over_quota.ok and "Quota has been met" in over_quota.stderr \
        and "403" in over_quota.stderr, (over_quota.stdout, over_quota.stderr)
    assert {p["name"] for p in providers.json()} >= {"amphora"}
    assert [f["name"] for f in flavors.json()] == ["small"]
    for name, result in (("amphora list", amp_denied), ("failover", failover_denied)):
        assert not result.ok and "403" in result.stderr, (name, result.stdout, result.stderr)
    assert defaults.json()["load_balancer"] == -1  # a project's reader may read the defaults
    deleted.check()
    assert not gone.ok and "Unable to locate web" in gone.stderr, (gone.stdout, gone.stderr)
    with s.http(ROOT) as client:
        assert client.get(f"{V}/loadbalancers/{lb_id}").status_code == 404
    with httpx.Client(base_url=s.url) as anonymous:
        assert anonymous.get(f"{V}/loadbalancers").status_code == 401
    bugs.check()
