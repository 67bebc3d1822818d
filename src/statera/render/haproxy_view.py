"""The view ``templates/haproxy.cfg.j2`` lays out, and what every part of haproxy.py shares.

The view is made only of `Cfg` values (see render/escape.py). render/haproxy.py assembles it;
haproxy_tls.py, haproxy_l7.py and haproxy_backend.py fill in their parts of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from statera.domain.model import Pool
from statera.render import escape as esc
from statera.render.escape import Cfg

PEERS_SECTION = "statera_peers"
MAX_CONNECTIONS = 1_000_000
MAX_TIMEOUT_MS = 2_147_483_647

# RFC 7230 token characters: HTTP header and cookie names inside a sample-fetch argument.
HTTP_TOKEN = re.compile(r"[A-Za-z0-9!$&*+\-.^_`|~]{1,255}")


@dataclass
class Acl:
    name: Cfg
    criterion: Cfg


@dataclass
class PolicyRule:
    action: Cfg
    condition: Cfg


@dataclass
class Route:
    backend: Cfg
    policy_id: Cfg


@dataclass
class Header:
    name: Cfg
    value: Cfg


@dataclass
class Frontend:
    id: Cfg
    mode: Cfg
    maxconn: Cfg
    binds: list[Cfg]
    timeout_client: Cfg
    inspect_delay: Cfg | None = None
    log_format: Cfg | None = None
    allowed_sources: list[Cfg] = field(default_factory=list)
    forwardfor: bool = False
    request_headers: list[Header] = field(default_factory=list)
    hsts: Cfg | None = None
    prometheus: bool = False
    acls: list[Acl] = field(default_factory=list)
    policy_rules: list[PolicyRule] = field(default_factory=list)
    pool_policies: list[Route] = field(default_factory=list)
    unrouted: Cfg | None = None
    default_backend: Cfg | None = None


@dataclass
class Backend:
    name: Cfg
    mode: Cfg
    balance: list[Cfg]
    fullconn: Cfg
    timeout_connect: Cfg
    timeout_server: Cfg
    persistence: list[Cfg]
    health_check: list[Cfg]
    servers: list[Cfg]


@dataclass
class Peer:
    name: Cfg
    address: Cfg


def words(*parts: Cfg | None) -> Cfg:
    """Words already made safe, joined into one directive (None parts are left out)."""
    for part in parts:
        if part is not None and not isinstance(part, Cfg):
            raise TypeError(f"unescaped word {part!r}")
    return Cfg(" ".join(p for p in parts if p is not None))


def ms(value: object, what: str) -> Cfg:
    return Cfg(esc.integer(value, what, 0, MAX_TIMEOUT_MS) + "ms")


def or_default(value: int | None, default: int) -> int:
    return default if value is None else value


def backend_name(pool: Pool, listener_id: Cfg) -> Cfg:
    """``<pool_id>:<listener_id>``: a pool used by two listeners is two backends."""
    return Cfg(f"{esc.object_id(pool.id, 'pool id')}:{listener_id}")
