"""Enumerations of the Octavia v2 API, spelled as the API spells them."""

from __future__ import annotations

from enum import StrEnum


class ProvisioningStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PENDING_CREATE = "PENDING_CREATE"
    PENDING_UPDATE = "PENDING_UPDATE"
    PENDING_DELETE = "PENDING_DELETE"
    DELETED = "DELETED"
    ERROR = "ERROR"


PENDING_STATUSES = frozenset(
    {
        ProvisioningStatus.PENDING_CREATE,
        ProvisioningStatus.PENDING_UPDATE,
        ProvisioningStatus.PENDING_DELETE,
    }
)
# A load balancer may be deleted or failed over from these; other objects may be deleted from them.
DELETABLE_STATUSES = frozenset({ProvisioningStatus.ACTIVE, ProvisioningStatus.ERROR})


class OperatingStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    DEGRADED = "DEGRADED"
    ERROR = "ERROR"
    DRAINING = "DRAINING"
    NO_MONITOR = "NO_MONITOR"


class AmphoraStatus(StrEnum):
    PENDING_CREATE = "PENDING_CREATE"
    BOOTING = "BOOTING"
    ALLOCATED = "ALLOCATED"
    READY = "READY"
    PENDING_DELETE = "PENDING_DELETE"
    DELETED = "DELETED"
    ERROR = "ERROR"
    FAILOVER_STOPPED = "FAILOVER_STOPPED"


class AmphoraRole(StrEnum):
    MASTER = "MASTER"
    BACKUP = "BACKUP"
    STANDALONE = "STANDALONE"


class Topology(StrEnum):
    SINGLE = "SINGLE"
    ACTIVE_STANDBY = "ACTIVE_STANDBY"


class ListenerProtocol(StrEnum):
    TCP = "TCP"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TERMINATED_HTTPS = "TERMINATED_HTTPS"
    UDP = "UDP"
    SCTP = "SCTP"
    PROMETHEUS = "PROMETHEUS"


class PoolProtocol(StrEnum):
    TCP = "TCP"
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    PROXY = "PROXY"
    PROXYV2 = "PROXYV2"
    UDP = "UDP"
    SCTP = "SCTP"


class LbAlgorithm(StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_CONNECTIONS = "LEAST_CONNECTIONS"
    SOURCE_IP = "SOURCE_IP"
    SOURCE_IP_PORT = "SOURCE_IP_PORT"


class SessionPersistenceType(StrEnum):
    SOURCE_IP = "SOURCE_IP"
    HTTP_COOKIE = "HTTP_COOKIE"
    APP_COOKIE = "APP_COOKIE"


class HealthMonitorType(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    PING = "PING"
    TCP = "TCP"
    TLS_HELLO = "TLS-HELLO"
    UDP_CONNECT = "UDP-CONNECT"
    SCTP = "SCTP"


class HttpMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    TRACE = "TRACE"
    OPTIONS = "OPTIONS"
    CONNECT = "CONNECT"
    PATCH = "PATCH"


class L7PolicyAction(StrEnum):
    REJECT = "REJECT"
    REDIRECT_TO_URL = "REDIRECT_TO_URL"
    REDIRECT_TO_POOL = "REDIRECT_TO_POOL"
    REDIRECT_PREFIX = "REDIRECT_PREFIX"


class L7RuleType(StrEnum):
    HOST_NAME = "HOST_NAME"
    PATH = "PATH"
    FILE_TYPE = "FILE_TYPE"
    HEADER = "HEADER"
    COOKIE = "COOKIE"
    SSL_CONN_HAS_CERT = "SSL_CONN_HAS_CERT"
    SSL_VERIFY_RESULT = "SSL_VERIFY_RESULT"
    SSL_DN_FIELD = "SSL_DN_FIELD"


class L7RuleCompareType(StrEnum):
    REGEX = "REGEX"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    CONTAINS = "CONTAINS"
    EQUAL_TO = "EQUAL_TO"


class ClientAuthentication(StrEnum):
    NONE = "NONE"
    OPTIONAL = "OPTIONAL"
    MANDATORY = "MANDATORY"


class TlsVersion(StrEnum):
    SSLv3 = "SSLv3"
    TLSv1 = "TLSv1"
    TLSv1_1 = "TLSv1.1"
    TLSv1_2 = "TLSv1.2"
    TLSv1_3 = "TLSv1.3"


TLS_VERSION_ORDER = [v.value for v in TlsVersion]


class AlpnProtocol(StrEnum):
    H2 = "h2"
    HTTP_1_1 = "http/1.1"
    HTTP_1_0 = "http/1.0"


class VnicType(StrEnum):
    NORMAL = "normal"
    DIRECT = "direct"


# Which pool protocols a listener of each protocol may use.
LISTENER_POOL_PROTOCOLS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "HTTPS": frozenset({"HTTPS", "TCP", "PROXY", "PROXYV2"}),
    "TERMINATED_HTTPS": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "TCP": frozenset({"TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2"}),
    "UDP": frozenset({"UDP"}),
    "SCTP": frozenset({"SCTP"}),
    "PROMETHEUS": frozenset(),
}

_TCP_POOL_MONITORS = frozenset({"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO"})
_LVS_POOL_MONITORS = frozenset({"HTTP", "SCTP", "TCP", "UDP-CONNECT"})
# Which health monitor types a pool of each protocol may carry.
POOL_MONITOR_TYPES: dict[str, frozenset[str]] = {
    "HTTP": _TCP_POOL_MONITORS,
    "HTTPS": _TCP_POOL_MONITORS,
    "PROXY": _TCP_POOL_MONITORS,
    "PROXYV2": _TCP_POOL_MONITORS,
    "TCP": _TCP_POOL_MONITORS,
    "UDP": _LVS_POOL_MONITORS,
    "SCTP": _LVS_POOL_MONITORS,
}


def l4_family(protocol: str) -> str:
    """The transport a listener protocol binds: listeners may share a port across families."""
    if protocol in ("UDP", "SCTP"):
        return protocol
    return "TCP"


HTTP_HEADERS = frozenset(
    {
        "X-Forwarded-For",
        "X-Forwarded-Port",
        "X-Forwarded-Proto",
        "X-Forwarded-IP",
        "X-Client-IP",
        "X-Real-IP",
    }
)
SSL_HEADERS = frozenset(
    {
        "X-SSL-Client-Verify",
        "X-SSL-Client-Has-Cert",
        "X-SSL-Client-DN",
        "X-SSL-Client-CN",
        "X-SSL-Issuer",
        "X-SSL-Client-SHA1",
        "X-SSL-Client-Not-Before",
        "X-SSL-Client-Not-After",
    }
)
