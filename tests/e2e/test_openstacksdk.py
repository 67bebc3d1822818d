"""openstacksdk's ``conn.load_balancer`` (what Ansible ``openstack.cloud.*`` and Horizon use)
against a real ``statera up``.

Without Keystone the SDK is pointed at Statera per service:
``Connection(auth_type="none", load_balancer_endpoint_override=URL,
network_endpoint_override=URL)`` — the network override lets ``conn.network.find_subnet``
resolve the VIP subnet by name from Statera's read-only Neutron view. With http_basic,
``auth_type="http_basic"`` and ``auth={"username", "password", "endpoint"}`` send Basic
credentials on every call. The SDK follows the version document's ``/v2`` link. The
secret store is Barbican-shaped: ``key_manager_endpoint_override=URL/v1`` makes
``conn.key_manager`` store the secrets and certificate containers a TLS listener names.
"""

from __future__ import annotations

from typing import Any

import httpx
import openstack
import pytest
from openstack import exceptions as sdk_exc

from tests import certgen
from tests.e2e.conftest import Statera

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

V = "/v2/lbaas"
WAIT = {"interval": 0.2, "wait": 60}


def connect(s: Statera, user: tuple[str, str] | None = None) -> Any:
    overrides: dict[str, Any] = {"load_balancer_endpoint_override": s.url,
                                 "network_endpoint_override": s.url,
                                 "key_manager_endpoint_override": f"{s.url}/v1"}
    if user is None:
        return openstack.connection.Connection(auth_type="none", **overrides)
    return openstack.connection.Connection(
        auth_type="http_basic",
        auth={"username": user[0], "password": user[1], "endpoint": s.url}, **overrides)


def test_sdk_noauth_full_scenario(statera_up: Any) -> None:
    s: Statera = statera_up()
    conn = connect(s)
    lbp = conn.load_balancer
    subnet = conn.network.find_subnet("public-subnet")
    assert subnet is not None and subnet.cidr == "10.210.0.0/24"

    lb = lbp.create_load_balancer(name="sdk-web", vip_subnet_id=subnet.id, tags=["e2e", "sdk"])
    assert lb.provisioning_status == "PENDING_CREATE"
    lb = lbp.wait_for_load_balancer(lb.id, **WAIT)
    assert lb.provisioning_status == "ACTIVE" and lb.vip_address.startswith("10.210.0.")

    listener = lbp.create_listener(name="http", protocol="HTTP", protocol_port=80,
                                   load_balancer_id=lb.id)
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    pool = lbp.create_pool(name="app", listener_id=listener.id, protocol="HTTP",
                           lb_algorithm="ROUND_ROBIN")
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    alt = lbp.create_pool(name="alt", loadbalancer_id=lb.id, protocol="HTTP",
                          lb_algorithm="LEAST_CONNECTIONS")
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    for address in ("10.210.0.50", "10.210.0.51"):
        lbp.create_member(pool, address=address, protocol_port=8080)
        lbp.wait_for_load_balancer(lb.id, **WAIT)
    hm = lbp.create_health_monitor(pool_id=pool.id, type="HTTP", delay=5, timeout=3,
                                   max_retries=3, url_path="/health")
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    policy = lbp.create_l7_policy(listener_id=listener.id, action="REDIRECT_TO_POOL",
                                  redirect_pool_id=alt.id, name="to-alt")
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    rule = lbp.create_l7_rule(policy, type="PATH", compare_type="STARTS_WITH", value="/api")
    lbp.wait_for_load_balancer(lb.id, **WAIT)

    # Every object ACTIVE, read back through the SDK.
    assert lbp.get_listener(listener).provisioning_status == "ACTIVE"
    assert lbp.get_pool(pool).provisioning_status == "ACTIVE"
    assert lbp.get_pool(alt).provisioning_status == "ACTIVE"
    members = list(lbp.members(pool))
    assert sorted(m.address for m in members) == ["10.210.0.50", "10.210.0.51"]
    assert {m.provisioning_status for m in members} == {"ACTIVE"}
    assert lbp.get_health_monitor(hm).provisioning_status == "ACTIVE"
    assert lbp.get_l7_policy(policy).provisioning_status == "ACTIVE"
    got_rule = lbp.get_l7_rule(rule, policy)
    assert (got_rule.provisioning_status, got_rule.rule_value) == ("ACTIVE", "/api")

    # Finding by name, tag filters, statistics.
    assert lbp.find_load_balancer("sdk-web").id == lb.id
    assert lbp.find_listener("http").id == listener.id
    assert lbp.find_pool("app").id == pool.id
    assert lbp.find_health_monitor(hm.id).id == hm.id
    assert [x.id for x in lbp.load_balancers(tags="e2e,sdk")] == [lb.id]
    assert list(lbp.load_balancers(tags="e2e,nope")) == []
    assert [x.id for x in lbp.load_balancers(any_tags="nope,sdk")] == [lb.id]
    assert list(lbp.load_balancers(not_tags="e2e")) == []
    assert [x.id for x in lbp.load_balancers(not_any_tags="nope")] == [lb.id]
    lb_stats = lbp.get_load_balancer_statistics(lb.id)
    assert lb_stats.total_connections == 0 and lb_stats.bytes_in == 0
    assert lbp.get_listener_statistics(listener.id).request_errors == 0

    # The SDK has no batch member update: over HTTP, as OCCM does.
    with s.http() as client:
        r = client.put(f"{V}/pools/{pool.id}/members", json={"members": [
            {"address": "10.210.0.51", "protocol_port": 8080, "weight": 5},
            {"address": "10.210.0.52", "protocol_port": 8080}]})
        assert r.status_code == 202, r.text
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    assert sorted((m.address, m.weight) for m in lbp.members(pool)) == [
        ("10.210.0.51", 5), ("10.210.0.52", 1)]

    # Catalog and admin calls.
    assert "amphora" in {p.name for p in lbp.providers()}
    profile = lbp.create_flavor_profile(name="fp1", provider_name="amphora",
                                        flavor_data='{"loadbalancer_topology": "SINGLE"}')
    flavor = lbp.create_flavor(name="small", flavor_profile_id=profile.id, enabled=True)
    assert [f.id for f in lbp.flavors()] == [flavor.id]
    assert lbp.find_flavor("small").id == flavor.id
    az_profile = lbp.create_availability_zone_profile(
        name="azp1", provider_name="amphora", availability_zone_data='{"compute_zone": "nova"}')
    az = lbp.create_availability_zone(name="az1", availability_zone_profile_id=az_profile.id,
                                      enabled=True)
    assert [z.name for z in lbp.availability_zones()] == [az.name]
    amphorae = list(lbp.amphorae(loadbalancer_id=lb.id))
    assert len(amphorae) == 1 and amphorae[0].status == "ALLOCATED"
    lbp.failover_load_balancer(lb.id)
    assert lbp.wait_for_load_balancer(lb.id, **WAIT).provisioning_status == "ACTIVE"

    # Quota: one load balancer, then the second is refused with Octavia's 403.
    lbp.update_quota("default", load_balancers=1)
    assert lbp.get_quota("default").load_balancers == 1
    with pytest.raises(sdk_exc.ForbiddenException, match="Quota has been met"):
        lbp.create_load_balancer(name="sdk-2", vip_subnet_id=subnet.id)

    # Cascade delete, then the load balancer is gone for every call.
    lbp.delete_load_balancer(lb.id, cascade=True)
    lbp.wait_for_delete(lb, **WAIT)
    assert lbp.find_load_balancer("sdk-web") is None
    with pytest.raises(sdk_exc.NotFoundException):
        lbp.get_load_balancer(lb.id)
    with pytest.raises(sdk_exc.NotFoundException):
        lbp.get_pool(pool.id)
    conn.close()


def test_sdk_http_basic_tenancy(statera_up: Any) -> None:
    alice, bob, root = ("alice", "alice-Pw-1"), ("bob", "bob-Pw-1"), ("root", "root-Pw-1")

    s: Statera = statera_up(STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    s.add_users_in_process((*alice, "project-a", "member"), (*bob, "project-b", "member"),
                           (*root, "admin-project", "admin"))
    as_alice, as_bob, as_root = connect(s, alice), connect(s, bob), connect(s, root)
    subnet = as_alice.network.find_subnet("public-subnet")
    lb = as_alice.load_balancer.create_load_balancer(name="a-web", vip_subnet_id=subnet.id)
    lb = as_alice.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    assert lb.project_id == "project-a" and lb.provisioning_status == "ACTIVE"

    assert list(as_bob.load_balancer.load_balancers()) == []
    assert as_bob.load_balancer.find_load_balancer("a-web") is None
    with pytest.raises(sdk_exc.ForbiddenException):
        as_bob.load_balancer.get_load_balancer(lb.id)
    with pytest.raises(sdk_exc.ForbiddenException):
        as_bob.load_balancer.delete_load_balancer(lb.id)
    with pytest.raises(sdk_exc.ForbiddenException):
        list(as_alice.load_balancer.amphorae())
    with pytest.raises(sdk_exc.ForbiddenException):
        as_alice.load_balancer.update_quota("project-a", load_balancers=100)

    assert [x.id for x in as_root.load_balancer.load_balancers()] == [lb.id]
    assert len(list(as_root.load_balancer.amphorae(loadbalancer_id=lb.id))) == 1
    as_root.load_balancer.update_quota("project-a", load_balancers=1)
    with pytest.raises(sdk_exc.ForbiddenException, match="Quota has been met"):
        as_alice.load_balancer.create_load_balancer(name="a-2", vip_subnet_id=subnet.id)

    as_alice.load_balancer.delete_load_balancer(lb.id, cascade=True)
    as_alice.load_balancer.wait_for_delete(lb, **WAIT)
    assert as_alice.load_balancer.find_load_balancer("a-web") is None
    assert httpx.get(f"{s.url}{V}/loadbalancers").status_code == 401
    for conn in (as_alice, as_bob, as_root):
        conn.close()


def test_sdk_key_manager_certificate_container_for_a_tls_listener(statera_up: Any) -> None:
    s: Statera = statera_up()
    conn = connect(s)
    ca = certgen.make_ca()
    leaf = certgen.make_leaf(ca, "www.example.com")
    km, lbp = conn.key_manager, conn.load_balancer

    def secret(payload: bytes, kind: str) -> str:
        made = km.create_secret(name=kind, payload=payload.decode(), secret_type=kind,
                                payload_content_type="text/plain")
        return str(made.secret_ref)

    container = km.create_container(name="www", type="certificate", secret_refs=[
        {"name": "certificate", "secret_ref": secret(leaf.cert_pem, "certificate")},
        {"name": "private_key", "secret_ref": secret(leaf.key_pem, "private")},
        {"name": "intermediates", "secret_ref": secret(ca.cert_pem, "certificate")}])
    ref = container.container_ref
    assert ref.startswith(f"{s.url}/v1/containers/")
    shown = km.get_container(container.container_id)
    assert shown.type == "certificate" and len(shown.secret_refs) == 3
    assert [c.name for c in km.containers()] == ["www"]

    subnet = conn.network.find_subnet("public-subnet")
    lb = lbp.wait_for_load_balancer(
        lbp.create_load_balancer(name="tls", vip_subnet_id=subnet.id).id, **WAIT)
    listener = lbp.create_listener(name="https", protocol="TERMINATED_HTTPS",
                                   protocol_port=443, load_balancer_id=lb.id,
                                   default_tls_container_ref=ref)
    lbp.wait_for_load_balancer(lb.id, **WAIT)
    assert lbp.get_listener(listener.id).default_tls_container_ref == ref
    with pytest.raises(sdk_exc.ConflictException):
        km.delete_container(container.container_id)

    lbp.delete_load_balancer(lb.id, cascade=True)
    lbp.wait_for_delete(lb, **WAIT)
    km.delete_container(container.container_id)
    assert list(km.containers()) == []
    conn.close()
