"""/v2/lbaas/listeners: create/show/list/update/delete, validation, locking, quota, stats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statera.db import models as m
from tests import certgen
from tests.conftest import Api, build_api

L = "/v2/lbaas/listeners"
# References to secrets that resolve (tests.certgen.seed_secrets stores them).
REF = certgen.ref(certgen.SERVER_ID)
SNI1 = certgen.ref(certgen.SNI_A_ID)
SNI2 = certgen.SNI_B_ID  # a bare id is a reference too
CA = certgen.ref(certgen.CA_ID)
CRL = certgen.ref(certgen.CRL_ID)


@pytest.fixture(autouse=True)
def _tls_secrets(request: pytest.FixtureRequest) -> None:
    for name in ("api", "one_lb", "one_listener"):
        if name in request.fixturenames:
            found = request.getfixturevalue(name)
            certgen.seed_secrets((found if name == "api" else found[0]).deps)


def _listener(api: Api, lb: dict[str, Any], *, status: int = 201, **fields: Any) -> Any:
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}
    body.update(fields)
    answer = api.post(L, {"listener": body}, status=status)
    return answer["listener"] if status == 201 else answer


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


@pytest.fixture(scope="module")
def one_lb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any]]]:
    """An app with one settled load balancer, shared by tests that must change nothing."""
    a = build_api(tmp_path_factory.mktemp("listeners"))
    yield a, a.make_lb()
    a.client.close()
    a.deps.db.dispose()


@pytest.fixture(scope="module")
def one_listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any]]]:
    """An app with one settled HTTP listener, shared by tests that must change nothing."""
    a = build_api(tmp_path_factory.mktemp("listener"))
    li = _listener(a, a.make_lb(), name="keep", allowed_cidrs=["10.0.0.0/8"])
    a.settle()
    yield a, li
    a.client.close()
    a.deps.db.dispose()


def _lb_status(api: Api, lb: dict[str, Any]) -> str:
    return api.get(f"/v2/lbaas/loadbalancers/{lb['id']}")["loadbalancer"]["provisioning_status"]


def test_create_settle_update_delete(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb, name="web", tags=["blue", "green"])
    assert li["provisioning_status"] == "PENDING_CREATE"
    assert li["operating_status"] == "OFFLINE"
    assert li["loadbalancers"] == [{"id": lb["id"]}]
    assert li["tags"] == ["blue", "green"]
    assert li["tenant_id"] == li["project_id"] == api.project
    assert (
        li["timeout_client_data"],
        li["timeout_member_connect"],
        li["timeout_member_data"],
        li["timeout_tcp_inspect"],
    ) == (50000, 5000, 50000, 0)
    assert li["connection_limit"] == -1
    assert li["allowed_cidrs"] is None
    assert li["insert_headers"] == {}
    assert li["sni_container_refs"] == [] and li["l7policies"] == []
    assert li["tls_ciphers"] is None and li["tls_versions"] is None
    assert li["client_authentication"] == "NONE"
    assert _lb_status(api, lb) == "PENDING_UPDATE"
    api.settle()
    assert api.get(f"{L}/{li['id']}")["listener"]["provisioning_status"] == "ACTIVE"
    assert _lb_status(api, lb) == "ACTIVE"

    up = api.put(
        f"{L}/{li['id']}",
        {
            "listener": {
                "name": "web2",
                "connection_limit": 100,
                "timeout_client_data": 1000,
                "insert_headers": {"X-Forwarded-For": "true"},
                "admin_state_up": False,
            }
        },
    )["listener"]
    assert up["provisioning_status"] == "PENDING_UPDATE"
    assert (up["name"], up["connection_limit"], up["timeout_client_data"]) == ("web2", 100, 1000)
    assert up["admin_state_up"] is False
    assert up["insert_headers"] == {"X-Forwarded-For": "true"}
    api.settle()
    # A null puts a setting back to its default.
    up = api.put(
        f"{L}/{li['id']}",
        {
            "listener": {
                "connection_limit": None,
                "timeout_client_data": None,
                "insert_headers": None,
                "name": None,
            }
        },
    )["listener"]
    assert (up["connection_limit"], up["timeout_client_data"], up["insert_headers"]) == (
        -1,
        50000,
        {},
    )
    assert up["name"] is None
    api.settle()

    api.delete(f"{L}/{li['id']}")
    shown = api.get(f"{L}/{li['id']}")["listener"]
    assert shown["provisioning_status"] == "PENDING_DELETE"
    api.settle()
    api.get(f"{L}/{li['id']}", status=404)
    api.delete(f"{L}/{li['id']}", status=404)
    assert _lb_status(api, lb) == "ACTIVE"


def test_v2_0_alias_and_json_suffix(api: Api) -> None:
    lb = api.make_lb()
    li = api.post(
        "/v2.0/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 22}},
    )["listener"]
    api.settle()
    assert api.get(f"/v2.0/lbaas/listeners/{li['id']}")["listener"]["protocol"] == "TCP"
    assert api.get(f"/v2.0/lbaas/listeners/{li['id']}.json")["listener"]["id"] == li["id"]
    api.delete(f"/v2.0/lbaas/listeners/{li['id']}")


def test_terminated_https_gets_tls_defaults(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(
        api,
        lb,
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        default_tls_container_ref=REF,
        sni_container_refs=[SNI1, SNI1, SNI2],
        insert_headers={"X-SSL-Client-CN": "true", "X-Forwarded-Proto": "True"},
        hsts_max_age=3600,
        hsts_preload=True,
    )
    settings = api.deps.settings.api_settings
    assert li["tls_ciphers"] == settings.default_listener_ciphers
    assert li["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert li["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    assert li["default_tls_container_ref"] == REF
    assert li["sni_container_refs"] == [SNI1, SNI2]
    assert (li["hsts_max_age"], li["hsts_preload"], li["hsts_include_subdomains"]) == (
        3600,
        True,
        False,
    )
    api.settle()
    up = api.put(
        f"{L}/{li['id']}",
        {
            "listener": {
                "tls_versions": ["TLSv1.3"],
                "alpn_protocols": ["h2"],
                "tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256",
                "sni_container_refs": [SNI2],
                "client_ca_tls_container_ref": CA,
                "client_authentication": "MANDATORY",
                "client_crl_container_ref": CRL,
            }
        },
    )["listener"]
    assert up["tls_versions"] == ["TLSv1.3"] and up["alpn_protocols"] == ["h2"]
    assert up["sni_container_refs"] == [SNI2]
    assert up["client_authentication"] == "MANDATORY"
    api.settle()
    up = api.put(
        f"{L}/{li['id']}",
        {"listener": {"tls_versions": None, "tls_ciphers": None, "sni_container_refs": None}},
    )["listener"]
    assert up["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert up["tls_ciphers"] == settings.default_listener_ciphers
    assert up["sni_container_refs"] == []


# (listener fields, a fragment of the faultstring)
BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"protocol": "FTP"}, "protocol"),
    ({"protocol": "UDP"}, "UDP/SCTP listeners are not supported yet"),
    ({"protocol": "SCTP"}, "UDP/SCTP listeners are not supported yet"),
    ({"protocol_port": 0}, "protocol_port"),
    ({"protocol_port": 65536}, "protocol_port"),
    ({"connection_limit": -2}, "connection_limit"),
    ({"timeout_client_data": -1}, "timeout_client_data"),
    ({"timeout_member_data": 2073600001}, "timeout_member_data"),
    ({"name": "a" * 256}, "name"),
    ({"name": "evil\nname"}, "name"),
    ({"description": "x\r"}, "description"),
    ({"loadbalancer_id": "not-a-uuid"}, "loadbalancer_id"),
    ({"unknown": 1}, "Unknown attribute"),
    ({"insert_headers": {"X-Evil": "true"}}, "insert_headers"),
    ({"insert_headers": {"X-Forwarded-For": "yes"}}, "true' or 'false"),
    ({"insert_headers": {"X-Forwarded-For": True}}, "insert_headers"),
    ({"insert_headers": {"X-SSL-Client-CN": "true"}}, "TERMINATED_HTTPS"),
    ({"protocol": "TCP", "insert_headers": {"X-Forwarded-For": "true"}}, "HTTP and TERMINATED"),
    ({"default_tls_container_ref": REF}, "only valid for TERMINATED_HTTPS"),
    ({"sni_container_refs": [REF]}, "only valid for TERMINATED_HTTPS"),
    ({"tls_ciphers": "AES128-SHA"}, "only valid for TERMINATED_HTTPS"),
    ({"tls_versions": ["TLSv1.2"]}, "only valid for TERMINATED_HTTPS"),
    ({"alpn_protocols": ["h2"]}, "only valid for TERMINATED_HTTPS"),
    ({"hsts_max_age": 10}, "only valid for TERMINATED_HTTPS"),
    ({"hsts_preload": True}, "HSTS"),
    ({"client_authentication": "OPTIONAL"}, "TERMINATED_HTTPS"),
    ({"client_ca_tls_container_ref": CA}, "only valid for TERMINATED_HTTPS"),
    ({"protocol": "TERMINATED_HTTPS"}, "SNI or default certificate"),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": "has space"},
        "container reference",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": "a\nb"},
        "default_tls_container_ref",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": "x" * 256},
        "default_tls_container_ref",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "sni_container_refs": ["ok", "no good"]},
        "sni_container_refs",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "client_authentication": "MANDATORY",
        },
        "client_ca_tls_container_ref",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "client_crl_container_ref": CRL,
        },
        "client_ca_tls_container_ref",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "client_authentication": "SOMETIMES",
        },
        "client_authentication",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "tls_ciphers": "AES128-SHA\nbind :1",
        },
        "tls_ciphers",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "tls_ciphers": "AES128 SHA",
        },
        "OpenSSL cipher string",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "tls_versions": ["TLSv9"],
        },
        "tls_versions",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": REF, "tls_versions": []},
        "at least one TLS version",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "alpn_protocols": ["spdy/3"],
        },
        "alpn_protocols",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": REF, "alpn_protocols": []},
        "at least one ALPN",
    ),
    (
        {
            "protocol": "TERMINATED_HTTPS",
            "default_tls_container_ref": REF,
            "hsts_include_subdomains": True,
        },
        "hsts_max_age",
    ),
    (
        {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": REF, "hsts_max_age": -1},
        "hsts_max_age",
    ),
    ({"allowed_cidrs": ["10.0.0.0/33"]}, "allowed_cidrs"),
    ({"allowed_cidrs": ["banana"]}, "allowed_cidrs"),
    ({"allowed_cidrs": ["2001:db8::/32"]}, "IPv6"),
    ({"default_pool_id": "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"}, "Pool"),
    ({"tags": ["ok", "bad\ntag"]}, "tags"),
]


@pytest.mark.parametrize(("fields", "fragment"), BAD_CREATES)
def test_create_refuses_bad_input(
    one_lb: tuple[Api, dict[str, Any]], fields: dict[str, Any], fragment: str
) -> None:
    api, lb = one_lb
    status = 404 if "default_pool_id" in fields else 400
    fault = _listener(api, lb, status=status, **fields)
    assert fault["faultcode"] == "Client"
    assert fragment in fault["faultstring"]
    assert api.get(L)["listeners"] == []
    assert _lb_status(api, lb) == "ACTIVE"


def test_deployment_switches_and_prohibited_ciphers(tmp_path: Path) -> None:
    a = build_api(
        tmp_path,
        STATERA_API_SETTINGS__ALLOW_TLS_TERMINATED_LISTENERS="false",
        STATERA_API_SETTINGS__ALLOW_PROMETHEUS_LISTENERS="false",
    )
    lb = a.make_lb()
    for protocol in ("TERMINATED_HTTPS", "PROMETHEUS"):
        fault = _listener(a, lb, status=400, protocol=protocol, default_tls_container_ref=REF)
        assert "not allowed in this deployment" in fault["faultstring"]

    b = build_api(
        tmp_path / "b",
        STATERA_API_SETTINGS__TLS_CIPHER_PROHIBIT_LIST="RC4-MD5,DES-CBC3-SHA",
        STATERA_API_SETTINGS__MINIMUM_TLS_VERSION="TLSv1.2",
    )
    certgen.seed_secrets(b.deps)
    lb = b.make_lb()
    tls: dict[str, Any] = {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": REF}
    fault = _listener(b, lb, status=400, tls_ciphers="AES128-SHA:RC4-MD5", **tls)
    assert "prohibited by an administrator: RC4-MD5" in fault["faultstring"]
    fault = _listener(b, lb, status=400, tls_versions=["TLSv1.1", "TLSv1.2"], **tls)
    assert "below TLSv1.2" in fault["faultstring"]
    assert _listener(b, lb, tls_versions=["TLSv1.3"], **tls)["tls_versions"] == ["TLSv1.3"]


BAD_UPDATES: list[tuple[dict[str, Any], str]] = [
    ({"protocol": "TCP"}, "Unknown attribute"),
    ({"protocol_port": 81}, "Unknown attribute"),
    ({"loadbalancer_id": "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"}, "Unknown attribute"),
    ({"admin_state_up": None}, "admin_state_up"),
    ({"connection_limit": -5}, "connection_limit"),
    ({"timeout_tcp_inspect": 2073600001}, "timeout_tcp_inspect"),
    ({"insert_headers": {"Host": "true"}}, "insert_headers"),
    ({"default_tls_container_ref": REF}, "only valid for TERMINATED_HTTPS"),
    ({"allowed_cidrs": ["fe80::/10"]}, "IPv6"),
]


@pytest.mark.parametrize(("fields", "fragment"), BAD_UPDATES)
def test_update_refuses_bad_input(
    one_listener: tuple[Api, dict[str, Any]], fields: dict[str, Any], fragment: str
) -> None:
    api, li = one_listener
    before = api.get(f"{L}/{li['id']}")["listener"]
    assert before["provisioning_status"] == "ACTIVE"
    fault = api.put(f"{L}/{li['id']}", {"listener": fields}, status=400)
    assert fragment in fault["faultstring"]
    assert api.get(f"{L}/{li['id']}")["listener"] == before
    assert _lb_status(api, before["loadbalancers"][0]) == "ACTIVE"


def test_tls_listener_cannot_drop_its_last_certificate(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(
        api, lb, protocol="TERMINATED_HTTPS", protocol_port=443, default_tls_container_ref=REF
    )
    api.settle()
    fault = api.put(
        f"{L}/{li['id']}", {"listener": {"default_tls_container_ref": None}}, status=400
    )
    assert "SNI or default certificate" in fault["faultstring"]
    up = api.put(
        f"{L}/{li['id']}",
        {"listener": {"default_tls_container_ref": None, "sni_container_refs": [SNI1]}},
    )["listener"]
    assert up["default_tls_container_ref"] is None and up["sni_container_refs"] == [SNI1]


def test_allowed_cidrs_are_normalised_and_replaced(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb, allowed_cidrs=["192.0.2.7/24", "192.0.2.0/24", "10.1.0.0/16"])
    assert li["allowed_cidrs"] == ["10.1.0.0/16", "192.0.2.0/24"]
    api.settle()
    up = api.put(
        f"{L}/{li['id']}", {"listener": {"allowed_cidrs": ["10.1.0.0/16", "198.51.100.0/24"]}}
    )
    assert sorted(up["listener"]["allowed_cidrs"]) == ["10.1.0.0/16", "198.51.100.0/24"]
    api.settle()
    up = api.put(f"{L}/{li['id']}", {"listener": {"allowed_cidrs": []}})
    assert up["listener"]["allowed_cidrs"] is None


def test_changes_are_refused_while_the_tree_is_pending(api: Api) -> None:
    lb = api.make_lb()
    first = _listener(api, lb)
    # Not settled: the load balancer is PENDING_UPDATE.
    fault = _listener(api, lb, status=409, protocol_port=81)
    assert "is immutable and cannot be updated" in fault["faultstring"]
    api.put(f"{L}/{first['id']}", {"listener": {"name": "x"}}, status=409)
    api.delete(f"{L}/{first['id']}", status=409)
    api.settle()
    api.put(f"{L}/{first['id']}", {"listener": {"name": "x"}})
    api.put(f"{L}/{first['id']}", {"listener": {"name": "y"}}, status=409)
    api.settle()
    assert api.get(f"{L}/{first['id']}")["listener"]["name"] == "x"


def test_port_is_unique_per_load_balancer_and_transport(api: Api) -> None:
    lb = api.make_lb()
    _listener(api, lb, protocol="HTTP", protocol_port=80)
    api.settle()
    for protocol in ("HTTP", "TCP", "HTTPS", "TERMINATED_HTTPS"):
        fault = _listener(
            api,
            lb,
            status=409,
            protocol=protocol,
            protocol_port=80,
            default_tls_container_ref=REF if protocol == "TERMINATED_HTTPS" else None,
        )
        assert "protocol_port 80" in fault["faultstring"]
    other = api.make_lb()
    _listener(api, other, protocol_port=80)


def test_missing_parents_are_404(api: Api) -> None:
    missing = "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"
    api.post(
        L,
        {"listener": {"loadbalancer_id": missing, "protocol": "HTTP", "protocol_port": 80}},
        status=404,
    )
    api.get(f"{L}/{missing}", status=404)
    api.put(f"{L}/{missing}", {"listener": {"name": "x"}}, status=404)
    api.delete(f"{L}/{missing}", status=404)
    api.get(f"{L}/{missing}/stats", status=404)


def test_quota(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_QUOTAS__DEFAULT_LISTENER_QUOTA="1")
    lb = a.make_lb()
    _listener(a, lb)
    a.settle()
    fault = _listener(a, lb, status=403, protocol_port=81)
    assert "Quota has been met" in fault["faultstring"]
    assert len(a.get(L)["listeners"]) == 1
    assert _lb_status(a, lb) == "ACTIVE"


def test_default_pool(api: Api) -> None:
    lb = api.make_lb()
    http_pool, tcp_pool = _pool(api, lb, "HTTP"), _pool(api, lb, "TCP")
    li = _listener(api, lb, default_pool_id=http_pool["id"])
    assert li["default_pool_id"] == http_pool["id"]
    api.settle()
    fault = api.put(
        f"{L}/{li['id']}", {"listener": {"default_pool_id": tcp_pool["id"]}}, status=400
    )
    assert (
        "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'"
        in fault["faultstring"]
    )
    fault = _listener(
        api,
        lb,
        status=400,
        protocol="PROMETHEUS",
        protocol_port=9100,
        default_pool_id=tcp_pool["id"],
    )
    assert "PROMETHEUS" in fault["faultstring"]
    other = api.make_lb()
    foreign = _pool(api, other, "HTTP")
    api.put(f"{L}/{li['id']}", {"listener": {"default_pool_id": foreign["id"]}}, status=404)
    tcp = _listener(api, lb, protocol="TCP", protocol_port=81, default_pool_id=tcp_pool["id"])
    assert tcp["default_pool_id"] == tcp_pool["id"]
    api.settle()
    # Deleting the listener leaves its default pool in place.
    api.delete(f"{L}/{li['id']}")
    api.settle()
    assert api.get(f"/v2/lbaas/pools/{http_pool['id']}")["pool"]["provisioning_status"] == "ACTIVE"
    up = api.put(f"{L}/{tcp['id']}", {"listener": {"default_pool_id": None}})["listener"]
    assert up["default_pool_id"] is None


def test_delete_error_listener_and_cascade_of_l7(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    api.settle()
    policy = api.post(
        "/v2/lbaas/l7policies",
        {
            "l7policy": {
                "listener_id": li["id"],
                "action": "REJECT",
                "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}],
            }
        },
    )
    api.settle()
    with api.deps.db.write() as session:
        row = session.get(m.Listener, li["id"])
        assert row is not None
        row.provisioning_status = "ERROR"
    api.delete(f"{L}/{li['id']}")
    assert (
        api.get(f"/v2/lbaas/l7policies/{policy['l7policy']['id']}")["l7policy"][
            "provisioning_status"
        ]
        == "PENDING_DELETE"
    )
    api.settle()
    api.get(f"/v2/lbaas/l7policies/{policy['l7policy']['id']}", status=404)
    assert api.get("/v2/lbaas/l7policies")["l7policies"] == []


def test_stats_sum_every_amphora(api: Api) -> None:
    lb = api.make_lb()
    li = _listener(api, lb)
    api.settle()
    with api.deps.db.write() as session:
        for amp, n in (("a1", 1), ("a2", 10)):
            session.add(
                m.ListenerStatistics(
                    listener_id=li["id"],
                    amphora_id=amp,
                    bytes_in=n,
                    bytes_out=2 * n,
                    active_connections=3 * n,
                    total_connections=4 * n,
                    request_errors=5 * n,
                )
            )
    assert api.get(f"{L}/{li['id']}/stats") == {
        "stats": {
            "bytes_in": 11,
            "bytes_out": 22,
            "active_connections": 33,
            "total_connections": 44,
            "request_errors": 55,
        }
    }


def test_list_filters_sort_pages_and_fields(api: Api) -> None:
    lb = api.make_lb()
    made = []
    for port, protocol, tags in ((80, "HTTP", ["a"]), (81, "TCP", ["a", "b"]), (82, "HTTP", ["b"])):
        made.append(
            _listener(api, lb, protocol=protocol, protocol_port=port, name=f"l{port}", tags=tags)
        )
        api.settle()
    ids = [li["id"] for li in made]

    def names(query: str) -> list[str]:
        return [li["name"] for li in api.get(f"{L}?{query}")["listeners"]]

    assert names("protocol=HTTP") == ["l80", "l82"]
    assert names(f"loadbalancer_id={lb['id']}&protocol_port=81") == ["l81"]
    assert names("admin_state_up=true&provisioning_status=ACTIVE") == ["l80", "l81", "l82"]
    assert names("sort=protocol_port:desc") == ["l82", "l81", "l80"]
    assert names("sort_key=name&sort_dir=desc") == ["l82", "l81", "l80"]
    assert names("tags=a,b") == ["l81"]
    assert names("tags-any=a") == ["l80", "l81"]
    assert names("not-tags=b") == ["l80"]
    assert names("not-tags-any=a") == ["l82"]
    api.get(f"{L}?bogus=1", status=400)
    api.get(f"{L}?sort=bogus:asc", status=400)
    api.get(f"{L}?protocol_port=eighty", status=400)

    page = api.get(f"{L}?limit=2&sort=protocol_port:asc")
    assert [li["id"] for li in page["listeners"]] == ids[:2]
    assert [link["rel"] for link in page["listeners_links"]] == ["next"]
    page = api.get(f"{L}?limit=2&sort=protocol_port:asc&marker={ids[1]}")
    assert [li["id"] for li in page["listeners"]] == ids[2:]
    assert [link["rel"] for link in page["listeners_links"]] == ["previous"]

    listed = api.get(f"{L}?fields=id&fields=protocol_port")["listeners"]
    assert listed[0] == {"id": ids[0], "protocol_port": 80}
    shown = api.get(f"{L}/{ids[0]}?fields=name,tags")["listener"]
    assert shown == {"name": "l80", "tags": ["a"]}


def test_single_call_create_builds_listeners_with_pools_and_policies(api: Api) -> None:
    body = {
        "loadbalancer": {
            "vip_subnet_id": api.subnet_id,
            "name": "tree",
            "pools": [
                {"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
                {"name": "alt", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
            ],
            "listeners": [
                {
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "default_pool": {"name": "web"},
                    "tags": ["front"],
                    "l7policies": [
                        {
                            "action": "REDIRECT_TO_POOL",
                            "redirect_pool": {"name": "alt"},
                            "rules": [
                                {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/alt"}
                            ],
                        },
                        {
                            "action": "REDIRECT_TO_POOL",
                            "position": 1,
                            "redirect_pool": {
                                "name": "proxied",
                                "protocol": "PROXY",
                                "lb_algorithm": "ROUND_ROBIN",
                            },
                        },
                        {
                            "action": "REJECT",
                            "rules": [
                                {
                                    "type": "HEADER",
                                    "key": "X-Bad",
                                    "compare_type": "EQUAL_TO",
                                    "value": "1",
                                }
                            ],
                        },
                    ],
                },
                {
                    "protocol": "TCP",
                    "protocol_port": 81,
                    "default_pool": {
                        "name": "inline",
                        "protocol": "TCP",
                        "lb_algorithm": "ROUND_ROBIN",
                    },
                },
            ],
        }
    }
    lb = api.post("/v2/lbaas/loadbalancers", body)["loadbalancer"]
    api.settle()
    pools = {p["name"]: p["id"] for p in api.get("/v2/lbaas/pools")["pools"]}
    assert set(pools) == {"web", "alt", "proxied", "inline"}
    listeners = {
        li["protocol_port"]: li for li in api.get(f"{L}?loadbalancer_id={lb['id']}")["listeners"]
    }
    assert listeners[80]["default_pool_id"] == pools["web"]
    assert listeners[80]["tags"] == ["front"]
    assert listeners[81]["default_pool_id"] == pools["inline"]
    assert all(li["provisioning_status"] == "ACTIVE" for li in listeners.values())
    policies = api.get("/v2/lbaas/l7policies?sort=position:asc")["l7policies"]
    assert [(p["position"], p["action"], p["redirect_pool_id"]) for p in policies] == [
        (1, "REDIRECT_TO_POOL", pools["proxied"]),
        (2, "REDIRECT_TO_POOL", pools["alt"]),
        (3, "REJECT", None),
    ]
    assert [len(p["rules"]) for p in policies] == [0, 1, 1]


def test_single_call_refuses_a_bad_listener(api: Api) -> None:
    for listener, fragment in (
        (
            {"protocol": "HTTP", "protocol_port": 80, "tls_versions": ["TLSv1.2"]},
            "only valid for TERMINATED_HTTPS",
        ),
        ({"protocol": "UDP", "protocol_port": 53}, "not supported yet"),
        (
            {"protocol": "TCP", "protocol_port": 80, "l7policies": [{"action": "REJECT"}]},
            "HTTP and TERMINATED_HTTPS",
        ),
        (
            {"protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "missing"}},
            "protocol",
        ),
    ):
        body = {"loadbalancer": {"vip_subnet_id": api.subnet_id, "listeners": [listener]}}
        fault = api.post("/v2/lbaas/loadbalancers", body, status=400)
        assert fragment in fault["faultstring"], fault
    assert api.get("/v2/lbaas/loadbalancers")["loadbalancers"] == []
    assert api.get(L)["listeners"] == []


def test_single_create_schema_nests_pools_policies_and_rules() -> None:
    from pydantic import ValidationError

    from statera.api.schemas.listener import ListenerSingleCreate

    nested = {
        "protocol": "HTTP",
        "protocol_port": 80,
        "default_pool": {"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
        "l7policies": [
            {
                "action": "REDIRECT_TO_URL",
                "redirect_url": "https://example.com/",
                "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}],
            }
        ],
    }
    data = ListenerSingleCreate.model_validate(nested).model_dump(exclude_unset=True)
    assert data["l7policies"][0]["rules"][0]["value"] == "/"
    assert data["default_pool"]["name"] == "web"
    with pytest.raises(ValidationError):
        ListenerSingleCreate.model_validate({**nested, "loadbalancer_id": lb_id()})
    with pytest.raises(ValidationError):
        ListenerSingleCreate.model_validate(
            {**nested, "l7policies": [{"action": "REJECT", "listener_id": lb_id()}]}
        )


def lb_id() -> str:
    return "9a2b6c8e-4c9f-4b8e-8b0e-2f8e9f0a1b2c"
