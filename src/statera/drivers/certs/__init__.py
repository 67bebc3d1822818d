"""Certificate drivers: the controller's own PKI (local_ca) for controller <-> amphora mTLS."""

from statera.drivers.certs.local_ca import Pki, PkiPaths, init_pki, open_pki

__all__ = ["Pki", "PkiPaths", "init_pki", "open_pki"]
