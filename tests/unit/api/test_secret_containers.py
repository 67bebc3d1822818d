"""/v1/containers: Barbican-shaped certificate containers, accepted wherever a listener or
pool takes a certificate reference, and resolved by the worker into one PEM bundle."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from statera.services import secrets as svc
from statera.services.secret_box import SecretBox
from tests import certgen
from tests.conftest import Api
from tests.unit.api.test_secrets import operations, store_pem, tls_listener

C = "/v1/containers"


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    ca = certgen.make_ca()
    inter = certgen.make_ca("Statera test intermediate", issuer=ca)
    return {"ca": ca, "inter": inter, "www": certgen.make_leaf(inter, "www.example.com"),
            "other": certgen.make_leaf(ca, "other.example.com")}


def store_container(api: Api, parts: dict[str, str], *, kind: str = "certificate",
                    status: int = 201, project: str | None = None) -> Any:
    headers = {"X-Project-Id": project} if project else api.headers
    r = api.client.post(C, headers=headers, json={
        "name": "tls", "type": kind,
        "secret_refs": [{"name": n, "secret_ref": ref} for n, ref in parts.items()]})
    assert r.status_code == status, r.text
    return r.json()


def certificate_container(api: Api, pki: dict[str, Any], leaf: str = "www", **extra: str
                          ) -> str:
    parts = {"certificate": store_pem(api, pki[leaf].cert_pem),
             "private_key": store_pem(api, pki[leaf].key_pem),
             "intermediates": store_pem(api, pki["inter"].cert_pem), **extra}
    return str(store_container(api, parts)["container_ref"])


def test_store_show_list_delete(api: Api, pki: dict[str, Any]) -> None:
    cert = store_pem(api, pki["www"].cert_pem)
    key = store_pem(api, pki["www"].key_pem)
    answer = store_container(api, {"certificate": cert, "private_key": key})
    ref = answer["container_ref"]
    container_id = ref.rsplit("/", 1)[-1]
    assert ref == f"http://testserver{C}/{container_id}"
    shown = api.get(f"{C}/{container_id}")
    assert shown["container_ref"] == ref and shown["type"] == "certificate"
    assert shown["status"] == "ACTIVE" and shown["consumers"] == []
    assert shown["secret_refs"] == [{"name": "certificate", "secret_ref": cert},
                                    {"name": "private_key", "secret_ref": key}]
    listed = api.get(C)
    assert listed["total"] == 1 and listed["containers"][0]["container_ref"] == ref
    assert api.get(C, params={"type": "generic"})["total"] == 0
    # A secret a container names cannot go while the container is there.
    r = api.client.delete(f"/v1/secrets/{cert.rsplit('/', 1)[-1]}", headers=api.headers)
    assert r.status_code == 409 and container_id in r.text
    api.delete(f"{C}/{container_id}")
    api.get(f"{C}/{container_id}", status=404)
    api.delete(f"/v1/secrets/{cert.rsplit('/', 1)[-1]}")


@pytest.mark.parametrize(("kind", "names", "fragment"), [
    ("certificate", ["private_key"], "needs a secret named 'certificate'"),
    ("certificate", ["certificate", "public_key"], "'public_key' is not one of them"),
    ("rsa", ["private_key"], "needs a secret named 'public_key'"),
    ("vault", ["certificate"], "type must be one of"),
])
def test_bad_containers_are_400(api: Api, pki: dict[str, Any], kind: str, names: list[str],
                                fragment: str) -> None:
    ref = store_pem(api, pki["www"].cert_pem)
    r = store_container(api, dict.fromkeys(names, ref), kind=kind, status=400)
    assert fragment in r["faultstring"]
    assert api.get(C)["total"] == 0


def test_a_container_cannot_name_another_projects_secret(api: Api, pki: dict[str, Any]
                                                         ) -> None:
    foreign = store_pem(api, pki["www"].cert_pem, project="p2")
    r = store_container(api, {"certificate": foreign}, status=400)
    assert "names no secret of this project" in r["faultstring"]
    # ... and another project neither lists this project's containers nor uses them.
    mine = certificate_container(api, pki)
    other = {"X-Project-Id": "p2"}
    assert api.client.get(C, headers=other).json()["total"] == 0
    lb = api.client.post("/v2/lbaas/loadbalancers", headers=other, json={"loadbalancer": {
        "vip_subnet_id": api.subnet_id}}).json()["loadbalancer"]
    api.settle()
    r = api.client.post("/v2/lbaas/listeners", headers=other, json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": mine}})
    assert r.status_code == 400 and "no such container in this project" in r.text


def test_listener_takes_a_certificate_container_and_the_worker_gets_one_bundle(
        api: Api, pki: dict[str, Any]) -> None:
    lb = api.make_lb()
    ref = certificate_container(api, pki)
    other = certificate_container(api, pki, "other")
    listener = tls_listener(api, lb, default_tls_container_ref=ref,
                            sni_container_refs=[other])["listener"]
    api.settle()
    assert listener["default_tls_container_ref"] == ref
    bundle = svc.resolver(api.deps.db, SecretBox.for_settings(api.deps.settings))(ref)
    # leaf, its intermediate, then the key: what haproxy's crt reads
    assert bundle == (pki["www"].cert_pem + pki["inter"].cert_pem + pki["www"].key_pem)
    # In use: the container cannot be deleted.
    container_id = ref.rsplit("/", 1)[-1]
    r = api.client.delete(f"{C}/{container_id}", headers=api.headers)
    assert r.status_code == 409 and listener["id"] in r.text


def test_encrypted_key_with_its_passphrase_and_pkcs7_intermediates(
        api: Api, pki: dict[str, Any]) -> None:
    encrypted = pki["www"].key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret-phrase"))
    p7 = pkcs7.serialize_certificates([pki["inter"].cert], serialization.Encoding.PEM)
    ref = store_container(api, {
        "certificate": store_pem(api, pki["www"].cert_pem),
        "private_key": store_pem(api, encrypted),
        "private_key_passphrase": store_pem(api, b"s3cret-phrase", secret_type="passphrase"),
        "intermediates": store_pem(api, p7),
    })["container_ref"]
    lb = api.make_lb()
    tls_listener(api, lb, default_tls_container_ref=ref)
    bundle = svc.resolver(api.deps.db, SecretBox.for_settings(api.deps.settings))(ref)
    assert bundle.startswith(pki["www"].cert_pem + pki["inter"].cert_pem)
    assert bundle.endswith(pki["www"].key_pem)  # decrypted for haproxy


@pytest.mark.parametrize(("parts", "fragment"), [
    ({"certificate": "www_cert"}, "holds no private key"),
    ({"certificate": "www_cert", "private_key": "other_key"},
     "private key does not match its certificate"),
    ({"certificate": "www_cert", "private_key": "encrypted"}, "names no passphrase"),
    ({"certificate": "garbage"}, "a PEM block (certificate) cannot be read"),
])
def test_unusable_containers_are_400_on_the_listener(
        api: Api, pki: dict[str, Any], parts: dict[str, str], fragment: str) -> None:
    encrypted = pki["www"].key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"))
    material = {"www_cert": pki["www"].cert_pem, "other_key": pki["other"].key_pem,
                "encrypted": encrypted, "garbage": b"-----BEGIN CERTIFICATE-----\nxx\n"
                b"-----END CERTIFICATE-----\n"}
    ref = store_container(api, {name: store_pem(api, material[what])
                                for name, what in parts.items()})["container_ref"]
    lb = api.make_lb()
    before = operations(api)
    fault = tls_listener(api, lb, status=400, default_tls_container_ref=ref)
    assert fault["faultstring"].startswith(f"Could not retrieve certificate: {ref}: ")
    assert fragment in fault["faultstring"]
    assert operations(api) == before


def test_a_container_where_a_ca_is_needed_and_a_generic_container_are_refused(
        api: Api, pki: dict[str, Any]) -> None:
    lb = api.make_lb()
    ref = certificate_container(api, pki)
    generic = store_container(api, {"anything": store_pem(api, pki["www"].cert_pem)},
                              kind="generic")["container_ref"]
    www = certificate_container(api, pki)
    fault = tls_listener(api, lb, status=400, default_tls_container_ref=www,
                         client_ca_tls_container_ref=ref)
    assert "CA certificates is needed here, stored as a secret" in fault["faultstring"]
    fault = tls_listener(api, lb, status=400, default_tls_container_ref=generic)
    assert "a generic container cannot be used here" in fault["faultstring"]
