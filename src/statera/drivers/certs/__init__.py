"""Certificate drivers: the controller's own PKI (local_ca) for controller <-> amphora mTLS.

A ``CertIssuer`` hands out amphora server certificates; ``Pki`` is the real one, and
``NoopCertIssuer`` (for the noop drivers) issues nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from statera.drivers.certs.local_ca import Pki, PkiPaths, init_pki, open_pki


class CertIssuer(Protocol):
    def issue_server_cert(self, amphora_id: str) -> tuple[bytes, datetime | None]: ...

    def client_ca_pem(self) -> bytes: ...


class NoopCertIssuer:
    def issue_server_cert(self, amphora_id: str) -> tuple[bytes, datetime | None]:
        return b"", None

    def client_ca_pem(self) -> bytes:
        return b""


__all__ = ["CertIssuer", "NoopCertIssuer", "Pki", "PkiPaths", "init_pki", "open_pki"]
