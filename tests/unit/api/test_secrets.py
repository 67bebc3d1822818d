"""/v1/secrets (the Barbican-shaped store) and TLS references on listeners and pools that
resolve against it; the worker's ref -> PEM bundle."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509

from statera.db import models as m
from statera.domain.errors import StepFailed
from statera.services import secrets as svc
from statera.services.secret_box import SecretBox
from tests import certgen
from tests.conftest import Api

S = "/v1/secrets"
L = "/v2/lbaas/listeners"
P = "/v2/lbaas/pools"


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    ca = certgen.make_ca()
    www = certgen.make_leaf(ca, "www.example.com")
    return {"ca": ca, "www": www, "api": certgen.make_leaf(ca, "api.example.com"),
            "crl": certgen.make_crl(ca)}


def store_pem(api: Api, pem: bytes, project: str | None = None, **extra: Any) -> str:
    headers = {"X-Project-Id": project} if project else api.headers
    r = api.client.post(S, headers=headers, json={
        "name": "pem", "payload": pem.decode(), "payload_content_type": "text/plain",
        "secret_type": "certificate", **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["secret_ref"])


def store_binary(api: Api, data: bytes, project: str | None = None) -> str:
    headers = {"X-Project-Id": project} if project else api.headers
    r = api.client.post(S, headers=headers, json={
        "name": "p12", "payload": base64.b64encode(data).decode(),
        "payload_content_type": "application/octet-stream",
        "payload_content_encoding": "base64", "secret_type": "opaque",
        # What python-barbicanclient sends by default.
        "algorithm": "aes", "bit_length": 256, "mode": "cbc"})
    assert r.status_code == 201, r.text
    return str(r.json()["secret_ref"])


def operations(api: Api) -> int:
    with api.deps.db.read() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(m.Operation)) or 0)


def tls_listener(api: Api, lb: dict[str, Any], status: int = 201, **refs: Any) -> Any:
    body = {"loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS",
            "protocol_port": 443, **refs}
    return api.post(L, {"listener": body}, status=status)


# ---- the store --------------------------------------------------------------------------------


def test_store_show_payload_list_delete(api: Api, pki: dict[str, Any]) -> None:
    ref = store_pem(api, certgen.pem_bundle(pki["www"]), expiration="2999-01-01T00:00:00Z")
    secret_id = ref.rsplit("/", 1)[-1]
    assert ref == f"http://testserver/v1/secrets/{secret_id}"
    meta = api.get(f"{S}/{secret_id}")
    assert meta["secret_ref"] == ref and meta["status"] == "ACTIVE"
    assert meta["content_types"] == {"default": "text/plain"}
    assert meta["secret_type"] == "certificate" and meta["expiration"] == "2999-01-01T00:00:00"
    assert "payload" not in meta
    r = api.client.get(f"{S}/{secret_id}/payload",
                       headers={**api.headers, "Accept": "text/plain"})
    assert r.status_code == 200 and r.content == certgen.pem_bundle(pki["www"])
    assert r.headers["content-type"].startswith("text/plain")

    p12 = certgen.p12(pki["api"], pki["ca"])
    p12_ref = store_binary(api, p12)
    r = api.client.get(f"{S}/{p12_ref.rsplit('/', 1)[-1]}/payload",
                       headers={**api.headers, "Accept": "application/octet-stream"})
    assert r.status_code == 200 and r.content == p12
    assert r.headers["content-type"] == "application/octet-stream"
    shown = api.get(f"{S}/{p12_ref.rsplit('/', 1)[-1]}")
    assert (shown["algorithm"], shown["bit_length"], shown["mode"]) == ("aes", 256, "cbc")

    listed = api.get(S, params={"limit": 1})
    assert listed["total"] == 2 and len(listed["secrets"]) == 1
    assert listed["next"].endswith("/v1/secrets?limit=1&offset=1")
    second = api.get(S, params={"limit": 1, "offset": 1})
    assert second["secrets"][0]["secret_ref"] == p12_ref and "next" not in second
    assert api.get(S, params={"name": "p12"})["total"] == 1

    api.delete(f"{S}/{secret_id}")
    api.get(f"{S}/{secret_id}", status=404)
    api.get(f"{S}/{secret_id}/payload", status=404)
    assert api.get(S)["total"] == 1


def test_payloads_are_sealed_in_the_database(api: Api, pki: dict[str, Any]) -> None:
    store_pem(api, certgen.pem_bundle(pki["www"]))
    with api.deps.db.read() as s:
        (row,) = s.scalars(sa.select(m.Secret)).all()
    assert b"PRIVATE KEY" not in row.payload
    assert pki["www"].key_body[:40].encode() not in row.payload
    url = api.deps.settings.database_url
    if url.startswith("sqlite:///"):
        db_file = Path(url.removeprefix("sqlite:///"))
        assert pki["www"].key_body[:40].encode() not in db_file.read_bytes()


def test_projects_see_only_their_own_secrets(api: Api, pki: dict[str, Any]) -> None:
    mine = store_pem(api, pki["ca"].cert_pem)
    theirs = store_pem(api, pki["ca"].cert_pem, project="p2")
    assert [s["secret_ref"] for s in api.get(S)["secrets"]] == [mine]
    r = api.client.get(S, headers={"X-Project-Id": "p2"})
    assert [s["secret_ref"] for s in r.json()["secrets"]] == [theirs]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"payload_content_type": "text/plain"}, "payload"),
    ({"payload": "", "payload_content_type": "text/plain"}, "payload"),
    ({"payload": "x", "payload_content_type": "image/png"}, "payload_content_type"),
    ({"payload": "x"}, "payload_content_type"),
    ({"payload": "eA==", "payload_content_type": "application/octet-stream"}, "base64"),
    ({"payload": "not base64!", "payload_content_type": "application/octet-stream",
      "payload_content_encoding": "base64"}, "base64"),
    ({"payload": "x", "payload_content_type": "text/plain",
      "payload_content_encoding": "base64"}, "only for binary"),
    ({"payload": "x" * (64 * 1024 + 1), "payload_content_type": "text/plain"}, "bytes"),
    ({"payload": "x", "payload_content_type": "text/plain", "secret_type": "dragon"},
     "secret_type"),
    ({"payload": "x", "payload_content_type": "text/plain", "bit_length": -1}, "bit_length"),
    ({"payload": "x", "payload_content_type": "text/plain", "expiration": "soon"},
     "expiration"),
    ({"payload": "x", "payload_content_type": "text/plain",
      "expiration": "2001-01-01T00:00:00"}, "future"),
    ({"payload": "x", "payload_content_type": "text/plain", "owner": "me"}, "owner"),
    ({"payload": "x", "payload_content_type": "text/plain", "name": 5}, "name"),
])
def test_bad_stores_are_400(api: Api, body: dict[str, Any], fragment: str) -> None:
    fault = api.post(S, body, status=400)
    assert fragment in fault["faultstring"]
    assert api.get(S)["total"] == 0


def test_a_secret_in_use_cannot_be_deleted(api: Api, pki: dict[str, Any]) -> None:
    lb = api.make_lb()
    ref = store_pem(api, certgen.pem_bundle(pki["www"]))
    sni = store_pem(api, certgen.pem_bundle(pki["api"]))
    li = tls_listener(api, lb, default_tls_container_ref=ref,
                      sni_container_refs=[sni.rsplit("/", 1)[-1]])["listener"]
    api.settle()
    for used in (ref, sni):
        fault = api.delete(f"{S}/{used.rsplit('/', 1)[-1]}", status=409)
        assert f"listener {li['id']}" in fault["faultstring"]
    api.delete(f"{L}/{li['id']}")
    api.settle()
    api.delete(f"{S}/{sni.rsplit('/', 1)[-1]}")


# ---- references on listeners and pools -------------------------------------------------------


def test_tls_listener_with_pem_and_pkcs12_refs(api: Api, pki: dict[str, Any]) -> None:
    lb = api.make_lb()
    pem_ref = store_pem(api, certgen.pem_bundle(pki["www"]))
    p12_ref = store_binary(api, certgen.p12(pki["api"], pki["ca"]))
    ca_ref = store_pem(api, pki["ca"].cert_pem)
    crl_ref = store_pem(api, pki["crl"])
    li = tls_listener(api, lb, default_tls_container_ref=pem_ref,
                      sni_container_refs=[p12_ref, pem_ref.rsplit("/", 1)[-1]],
                      client_authentication="MANDATORY", client_ca_tls_container_ref=ca_ref,
                      client_crl_container_ref=crl_ref)["listener"]
    assert li["default_tls_container_ref"] == pem_ref
    api.settle()
    pool = api.post(P, {"pool": {"listener_id": li["id"], "protocol": "HTTP",
                                 "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                                 "tls_container_ref": p12_ref, "ca_tls_container_ref": ca_ref,
                                 "crl_container_ref": crl_ref}})["pool"]
    assert pool["tls_container_ref"] == p12_ref

    # The worker's view: each reference becomes one PEM bundle.
    resolve = svc.resolver(api.deps.db, SecretBox.for_settings(api.deps.settings))
    bundle = resolve(p12_ref)
    certs = x509.load_pem_x509_certificates(bundle)
    assert [c.subject for c in certs] == [pki["api"].cert.subject, pki["ca"].cert.subject]
    assert bundle.rstrip().endswith(b"-----END PRIVATE KEY-----")
    assert resolve(ca_ref) == pki["ca"].cert_pem
    assert resolve(crl_ref.rsplit("/", 1)[-1]) == pki["crl"]


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("default_tls_container_ref", "ca", "holds no private key"),
    ("default_tls_container_ref", "missing", "no such secret"),
    ("default_tls_container_ref", "foreign", "no such secret"),
    ("default_tls_container_ref", "garbage", "neither PEM, nor PKCS12, nor DER"),
    ("default_tls_container_ref",
     "https://barbican.example/v1/containers/0d6f5a9c-1111-4222-8333-444455556666",
     "no such container"),
    ("default_tls_container_ref", "https://barbican.example/v1/containers/x",
     "not a secret reference"),
    ("default_tls_container_ref", "not-a-uuid", "not a secret reference"),
    ("sni_container_refs", "crl", "holds no private key"),
    ("client_ca_tls_container_ref", "www", "holds a private key"),
    ("client_crl_container_ref", "ca", "no certificate revocation list"),
])
def test_unreadable_listener_refs_are_400_and_change_nothing(
        api: Api, pki: dict[str, Any], field: str, value: str, fragment: str) -> None:
    lb = api.make_lb()
    refs = {"www": store_pem(api, certgen.pem_bundle(pki["www"])),
            "ca": store_pem(api, pki["ca"].cert_pem), "crl": store_pem(api, pki["crl"]),
            "garbage": store_pem(api, b"not a certificate"),
            "foreign": store_pem(api, certgen.pem_bundle(pki["www"]), project="p2"),
            "missing": "https://statera.example/v1/secrets/0d6f5a9c-1111-4222-8333-444455556666"}
    ref = refs.get(value, value)
    body: dict[str, Any] = {"default_tls_container_ref": refs["www"]}
    if field == "sni_container_refs":
        body[field] = [ref]
    else:
        body[field] = ref
    if field.startswith("client_crl"):
        body["client_ca_tls_container_ref"] = refs["ca"]
    before = operations(api)
    fault = tls_listener(api, lb, status=400, **body)
    assert fault["faultstring"].startswith(f"Could not retrieve certificate: {ref}: ")
    assert fragment in fault["faultstring"]
    assert operations(api) == before and api.get(L)["listeners"] == []

    # The same on an update, which leaves the listener as it was.
    li = tls_listener(api, lb, default_tls_container_ref=refs["www"])["listener"]
    api.settle()
    fault = api.put(f"{L}/{li['id']}", {"listener": {k: v for k, v in body.items()
                                                     if k != "default_tls_container_ref"}
                                        or {field: body[field]}}, status=400)
    assert fragment in fault["faultstring"]
    assert api.get(f"{L}/{li['id']}")["listener"]["provisioning_status"] == "ACTIVE"


def test_pool_refs_are_checked_on_create_and_update(api: Api, pki: dict[str, Any]) -> None:
    lb = api.make_lb()
    ca_ref = store_pem(api, pki["ca"].cert_pem)
    foreign = store_pem(api, pki["ca"].cert_pem, project="p2")
    base = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "tls_enabled": True}
    fault = api.post(P, {"pool": {**base, "tls_container_ref": ca_ref}}, status=400)
    assert "holds no private key" in fault["faultstring"]
    fault = api.post(P, {"pool": {**base, "ca_tls_container_ref": foreign}}, status=400)
    assert "no such secret" in fault["faultstring"]
    pool = api.post(P, {"pool": {**base, "ca_tls_container_ref": ca_ref}})["pool"]
    api.settle()
    fault = api.put(f"{P}/{pool['id']}", {"pool": {"crl_container_ref": ca_ref}}, status=400)
    assert "no certificate revocation list" in fault["faultstring"]
    crl_ref = store_pem(api, pki["crl"])
    assert api.put(f"{P}/{pool['id']}", {"pool": {"crl_container_ref": crl_ref}}
                   )["pool"]["crl_container_ref"] == crl_ref


def test_resolver_failures_name_the_ref_not_the_content(api: Api, pki: dict[str, Any]) -> None:
    resolve = svc.resolver(api.deps.db, SecretBox.for_settings(api.deps.settings))
    ref = store_pem(api, certgen.pem_bundle(pki["www"]))
    api.delete(f"{S}/{ref.rsplit('/', 1)[-1]}")
    with pytest.raises(StepFailed, match="deleted or has expired"):
        resolve(ref)
    with pytest.raises(StepFailed, match="not a secret reference"):
        resolve("https://barbican.example/v1/containers/x")
    # Sealed under another key (the key file was replaced): a clear failure, no content.
    ref = store_pem(api, certgen.pem_bundle(pki["www"]))
    other = svc.resolver(api.deps.db, SecretBox(b"\x01" * 31 + b"\x02"))
    with pytest.raises(StepFailed, match="another secret store key") as info:
        other(ref)
    assert pki["www"].key_body[:40] not in info.value.text


def test_the_rest_driver_pushes_the_bundle(api: Api, pki: dict[str, Any],
                                           tmp_path: Path) -> None:
    """RestAmphoraDriver PUTs what the resolver returns for each certificate file."""
    from statera.domain.model import Amphora, LoadBalancer
    from statera.drivers.amphora.rest import RenderedConfig, RestAmphoraDriver
    from statera.drivers.certs.local_ca import PkiPaths

    ref = store_pem(api, certgen.pem_bundle(pki["www"], key_first=True))
    seen: dict[str, bytes] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = request.content
        return httpx.Response(202, json={})

    driver = RestAmphoraDriver(
        PkiPaths(tmp_path), transport=httpx.MockTransport(handler),
        secrets=svc.resolver(api.deps.db, SecretBox.for_settings(api.deps.settings)),
        renderer=lambda lb, amp: RenderedConfig(haproxy_cfg="global\n",
                                                certificates={"cert.pem": ref}))
    lb = LoadBalancer(id="3e0a4d1c-0000-4000-8000-00000000000a", project_id="p1",
                      topology="SINGLE")
    driver.apply_config(lb, Amphora(id="amp", status="ALLOCATED", lb_network_ip="192.0.2.1"))
    pushed = next(v for k, v in seen.items() if k.endswith("/certificates/cert.pem"))
    assert pushed == pki["www"].cert_pem + pki["www"].key_pem  # re-ordered: cert, then key
