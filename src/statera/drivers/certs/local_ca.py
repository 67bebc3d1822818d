"""The controller's own PKI, kept in one directory of files.

Two CAs, as upstream recommends: the *server CA* signs one certificate per amphora (CN and SAN
= the amphora id, serverAuth only), the *client CA* signs the controller's client certificate
(clientAuth only). An amphora trusts only the client CA, the controller only the server CA, so
an amphora's certificate can never pass for the controller's, nor one amphora's for another's.

Layout of the directory (0700)::

    server_ca.pem  server_ca.key   CA of amphora server certificates
    client_ca.pem  client_ca.key   CA of the controller's client certificate
    client.pem                     the controller's client certificate followed by its key
    heartbeat.key                  32 random bytes, hex; the heartbeat master key

Private keys and the heartbeat key are 0600 and never logged or echoed.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statera.domain.errors import ConfigError

CA_VALIDITY = timedelta(days=3650)
DEFAULT_CERT_VALIDITY = timedelta(days=30)
CLIENT_COMMON_NAME = "statera-controller"
HEARTBEAT_KEY_BYTES = 32
# Certificates are back-dated a little so a controller and an amphora whose clocks differ by
# a few minutes still agree that a fresh certificate is valid.
CLOCK_SKEW = timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class PkiPaths:
    directory: Path

    @property
    def server_ca_cert(self) -> Path:
        return self.directory / "server_ca.pem"

    @property
    def server_ca_key(self) -> Path:
        return self.directory / "server_ca.key"

    @property
    def client_ca_cert(self) -> Path:
        return self.directory / "client_ca.pem"

    @property
    def client_ca_key(self) -> Path:
        return self.directory / "client_ca.key"

    @property
    def client_cert(self) -> Path:
        """The controller's client certificate and key, in one PEM file."""
        return self.directory / "client.pem"

    @property
    def heartbeat_key(self) -> Path:
        return self.directory / "heartbeat.key"


def _now() -> datetime:
    return datetime.now(UTC)


def new_private_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Statera"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str, validity: timedelta = CA_VALIDITY) -> tuple[PrivateKey,
                                                                         x509.Certificate]:
    key = new_private_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_leaf(ca_key: PrivateKey, ca_cert: x509.Certificate, common_name: str, *,
               server: bool, validity: timedelta, not_before: datetime | None = None,
               ) -> tuple[PrivateKey, x509.Certificate]:
    """A leaf certificate for `common_name`: serverAuth with SAN DNS = the name (amphorae),
    or clientAuth (the controller) — never both."""
    key = new_private_key()
    start = not_before if not_before is not None else _now() - CLOCK_SKEW
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CLOCK_SKEW + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(common_name)]),
                                        critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically; it is 0600 from its first byte."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Pki:
    paths: PkiPaths
    cert_validity: timedelta = DEFAULT_CERT_VALIDITY

    def _load_ca(self, cert_path: Path, key_path: Path) -> tuple[PrivateKey, x509.Certificate]:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key_path}: expected an ECDSA key.")
        return key, cert

    def issue_server_cert(self, amphora_id: str,
                          validity: timedelta | None = None) -> tuple[bytes, datetime]:
        """A new key and certificate for one amphora, as one PEM (key, then certificate),
        and its expiry. The caller hands it to the amphora and never logs it."""
        ca_key, ca_cert = self._load_ca(self.paths.server_ca_cert, self.paths.server_ca_key)
        key, cert = issue_leaf(ca_key, ca_cert, amphora_id, server=True,
                               validity=validity or self.cert_validity)
        return key_pem(key) + cert_pem(cert), cert.not_valid_after_utc

    def issue_client_cert(self, common_name: str = CLIENT_COMMON_NAME,
                          validity: timedelta | None = None) -> tuple[bytes, datetime]:
        """A client certificate signed by the client CA: certificate, then key."""
        ca_key, ca_cert = self._load_ca(self.paths.client_ca_cert, self.paths.client_ca_key)
        key, cert = issue_leaf(ca_key, ca_cert, common_name, server=False,
                               validity=validity or self.cert_validity)
        return cert_pem(cert) + key_pem(key), cert.not_valid_after_utc

    def server_ca_pem(self) -> bytes:
        return self.paths.server_ca_cert.read_bytes()

    def client_ca_pem(self) -> bytes:
        return self.paths.client_ca_cert.read_bytes()

    def heartbeat_key(self) -> bytes:
        return _read_heartbeat_key(self.paths.heartbeat_key)

    def client_cert_expiry(self) -> datetime:
        return x509.load_pem_x509_certificate(
            self.paths.client_cert.read_bytes()).not_valid_after_utc


def _read_heartbeat_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigError(f"{path}: not a hex heartbeat key.") from None
    if len(key) != HEARTBEAT_KEY_BYTES:
        raise ConfigError(f"{path}: the heartbeat key must be {HEARTBEAT_KEY_BYTES} bytes.")
    return key


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Several services may start at once on a fresh host: one of them creates the PKI."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _ensure_ca(cert_path: Path, key_path: Path, common_name: str) -> None:
    present = [p for p in (cert_path, key_path) if p.exists()]
    if len(present) == 1:
        raise ConfigError(f"{present[0]} exists without its pair; restore it or remove it.")
    if present:
        _check_ca(cert_path, key_path)
        return
    key, cert = make_ca(common_name)
    write_private(key_path, key_pem(key))
    _write_public(cert_path, cert_pem(cert))


def _check_ca(cert_path: Path, key_path: Path) -> None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{cert_path} or {key_path} cannot be read as PEM.") from None
    if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo,
    ) != cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ConfigError(f"{key_path} is not the key of {cert_path}.")
    if cert.not_valid_after_utc <= _now():
        raise ConfigError(f"{cert_path} has expired; replace the CA deliberately.")
    os.chmod(key_path, 0o600)


def _client_cert_usable(pki: Pki) -> bool:
    """True while the client certificate is readable, signed by the current client CA and
    has more than a third of its validity left."""
    path = pki.paths.client_cert
    if not path.exists():
        return False
    try:
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificate(data)
        serialization.load_pem_private_key(data, password=None)
        ca = x509.load_pem_x509_certificate(pki.paths.client_ca_cert.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    left = cert.not_valid_after_utc - _now()
    return left > pki.cert_validity / 3


def init_pki(directory: str | os.PathLike[str],
             cert_validity: timedelta = DEFAULT_CERT_VALIDITY) -> Pki:
    """Create what is missing of the PKI in `directory`, keep what exists and is valid.

    A CA whose files are damaged, mismatched or expired stops this with ConfigError rather
    than being replaced silently (every amphora trusts it). The controller's client
    certificate is reissued when it is missing, foreign or near its end.
    """
    root = Path(directory)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    pki = Pki(PkiPaths(root), cert_validity)
    paths = pki.paths
    with _locked(root):
        _ensure_ca(paths.server_ca_cert, paths.server_ca_key, "Statera amphora server CA")
        _ensure_ca(paths.client_ca_cert, paths.client_ca_key, "Statera controller client CA")
        if not _client_cert_usable(pki):
            pem, _ = pki.issue_client_cert()
            write_private(paths.client_cert, pem)
        os.chmod(paths.client_cert, 0o600)
        if paths.heartbeat_key.exists():
            _read_heartbeat_key(paths.heartbeat_key)
            os.chmod(paths.heartbeat_key, 0o600)
        else:
            write_private(paths.heartbeat_key,
                          secrets.token_bytes(HEARTBEAT_KEY_BYTES).hex().encode() + b"\n")
    return pki


def open_pki(directory: str | os.PathLike[str],
             cert_validity: timedelta = DEFAULT_CERT_VALIDITY) -> Pki:
    """The PKI in `directory` as it is, without creating anything."""
    pki = Pki(PkiPaths(Path(directory)), cert_validity)
    for path in (pki.paths.server_ca_cert, pki.paths.server_ca_key, pki.paths.client_ca_cert,
                 pki.paths.client_cert, pki.paths.heartbeat_key):
        if not path.exists():
            raise ConfigError(f"{path} is missing; run 'statera certs init'.")
    return pki
