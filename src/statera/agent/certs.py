"""TLS files: the load balancers' certificates, and the agent's own server certificate.

Load balancer PEMs live in ``<base>/certs/<lb_id>/<name>.pem`` (directories 0700, files 0600);
names are checked against a strict pattern, so no request can name a path outside.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
from pathlib import Path

from statera.agent.errors import BadRequest, NotFound
from statera.agent.files import md5_hex, write_atomic
from statera.wire.agent_core import is_cert_filename, is_uuid

LOG = logging.getLogger(__name__)
MAX_PEM_BYTES = 1024 * 1024


class CertStore:
    def __init__(self, base_path: Path) -> None:
        self.root = base_path / "certs"

    def _dir(self, lb_id: str) -> Path:
        if not is_uuid(lb_id):
            raise BadRequest("Invalid load balancer id", "ids are UUIDs")
        return self.root / lb_id.lower()

    def _path(self, lb_id: str, filename: str) -> Path:
        if not is_cert_filename(filename):
            raise BadRequest("Invalid file name",
                             "names are letters, digits, '_', '-', '.' and end in .pem "
                             "or .crt-list")
        return self._dir(lb_id) / filename

    def put(self, lb_id: str, filename: str, data: bytes) -> str:
        path = self._path(lb_id, filename)
        if filename.endswith(".crt-list"):
            _check_text(data)
        else:
            _check_pem(data)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_atomic(path, data, mode=0o600)
        LOG.info("certificate %s of load balancer %s stored", filename, lb_id)
        return md5_hex(data)

    def md5(self, lb_id: str, filename: str) -> str:
        try:
            return md5_hex(self._path(lb_id, filename).read_bytes())
        except FileNotFoundError:
            raise NotFound("Not Found", f"no certificate {filename}") from None

    def delete(self, lb_id: str, filename: str) -> None:
        self._path(lb_id, filename).unlink(missing_ok=True)

    def remove_all(self, lb_id: str) -> None:
        shutil.rmtree(self._dir(lb_id), ignore_errors=True)


def _check_pem(data: bytes) -> None:
    if len(data) > MAX_PEM_BYTES:
        raise BadRequest("Invalid request", "the file is too large")
    if b"-----BEGIN " not in data:
        raise BadRequest("Invalid request", "not a PEM file")


def _check_text(data: bytes) -> None:
    if len(data) > MAX_PEM_BYTES or b"\0" in data:
        raise BadRequest("Invalid request", "not a crt-list")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Invalid request", "not a crt-list") from None


def check_server_pem(data: bytes, amphora_id: str, scratch: Path) -> None:
    """A new server certificate must hold a key that matches it and name this amphora.
    `scratch` is a private directory (the one the server certificate lives in)."""
    _check_pem(data)
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".pem", dir=scratch) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tmp.name)
        except ssl.SSLError:
            raise BadRequest("Invalid certificate",
                             "the PEM must hold a certificate and its private key") from None
    # Imported here: only this rare call needs it, and the agent stays small otherwise.
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise BadRequest("Invalid certificate", "no certificate found") from None
    names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if amphora_id not in names:
        raise BadRequest("Invalid certificate", "the certificate names another amphora")


def install_server_pem(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600)
