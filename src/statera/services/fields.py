"""Field checks shared by the resource services: pure functions of the values (and of the
deployment's settings, passed in), each raising ``InvalidInput`` worded as upstream words
field errors.

Two families of wording are kept, because clients already see them: the pool, member and
health monitor checks read a key from the request dict and give one reason per field
(``text``, ``choice``, ``integer``…); the listener and L7 checks take the value and give one
reason per failure (``check_text``, ``one_of``…). Where a rule is the same in both (a secret
reference, a cipher string) one function holds it and the caller passes its reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from statera.domain.enums import TLS_VERSION_ORDER
from statera.domain.errors import InvalidInput

T = TypeVar("T")

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 3986 characters: a Barbican URL, a secret id, a local reference, a redirect URL.
URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# OpenSSL cipher strings: names, separators and operators only (never spaces or newlines).
CIPHER_CHARS = re.compile(r"[A-Za-z0-9:+!@=_.\-]+")
# RFC 7230/6265 token characters (header and cookie names), minus those HAProxy's parser
# treats specially (# ' %); ( ) " are not token characters anyway.
HTTP_TOKEN = re.compile(r"[A-Za-z0-9!$&*+\-.^_`|~]+")
# Listener protocols that speak HTTP to the client: headers, L7 policies, HTTP-mode pools.
HTTP_LISTENER_PROTOCOLS = frozenset({"HTTP", "TERMINATED_HTTPS"})
MAX_REF_LENGTH = 255
MAX_CIPHERS_LENGTH = 2048


def invalid(field: str, value: Any, reason: str) -> InvalidInput:
    """The 400 every field check raises, worded as upstream words field errors."""
    return InvalidInput(f"Invalid input for field/attribute {field}. Value: '{value}'. {reason}")


def has_control(value: str) -> bool:
    return bool(CONTROL.search(value))


def unique(values: Iterable[T]) -> list[T]:
    """``values`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(values))


# ---- value checks (listeners, L7 policies and rules) ---------------------------------------


def check_text(field: str, value: Any, *, max_length: int = 255) -> str:
    if not isinstance(value, str):
        raise invalid(field, value, "A string is required.")
    if len(value) > max_length:
        raise invalid(field, value, f"Must be at most {max_length} characters long.")
    if has_control(value):
        raise invalid(field, value, "Control characters and line breaks are not allowed.")
    return value


def one_of(field: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed`` (an enum or plain strings)."""
    names = sorted(str(a) for a in allowed)
    if value not in names:
        raise invalid(field, value, f"Value should be one of {names}.")
    return str(value)


def require_some(field: str, values: list[Any], what: str) -> None:
    """Refuse an empty list where null (the deployment's default) is meant."""
    if not values:
        raise invalid(
            field, [], f"Give at least one {what}, or leave the attribute out for the default."
        )


# ---- request-dict checks (pools, members, health monitors) ---------------------------------


def check_keys(data: dict[str, Any], allowed: Iterable[str], resource: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"Invalid input for field/attribute {resource}. Unknown attribute "
            f"for argument {resource}: {', '.join(unknown)}"
        )


def text(data: dict[str, Any], key: str, *, max_len: int = 255) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len or has_control(value):
        raise invalid(
            key,
            value,
            f"A string of at most {max_len} characters without control characters is required.",
        )
    return value


def choice(
    data: dict[str, Any],
    key: str,
    allowed: Iterable[str],
    *,
    required: bool = False,
    attr: str | None = None,
) -> str | None:
    value = data.get(key)
    names = [str(a) for a in allowed]
    if value is None:
        if required:
            raise invalid(attr or key, None, "Mandatory field missing.")
        return None
    if not isinstance(value, str) or value not in names:
        raise invalid(attr or key, value, f"Value should be one of: {', '.join(names)}.")
    return value


def integer(
    data: dict[str, Any],
    key: str,
    low: int,
    high: int,
    *,
    default: int | None = None,
    required: bool = False,
    attr: str | None = None,
) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise invalid(attr or key, None, "Mandatory field missing.")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(attr or key, value, f"An integer from {low} to {high} is required.")
    return value


def boolean(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(key, value, "A boolean is required.")
    return value


def required_bool(changes: dict[str, Any], key: str) -> bool:
    """A boolean a PUT may change but not null (``admin_state_up``, ``backup``…)."""
    if changes.get(key) is None:
        raise invalid(key, None, "A boolean is required.")
    return boolean(changes, key, False)


def tags(data: dict[str, Any]) -> list[str] | None:
    value = data.get("tags")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(isinstance(t, str) and 0 < len(t) <= 255 and not has_control(t) for t in value)
    ):
        raise invalid(
            "tags", value, "A list of at most 100 strings of 1 to 255 characters is required."
        )
    return value


# ---- addresses -------------------------------------------------------------------------------


def ip_address(value: Any, attr: str, reserved: Collection[str]) -> str:
    """A usable backend address: a valid IP, not reserved, not one that cannot be a server."""
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        raise invalid(attr, value, "Not a valid IP address.")
    if str(ip) in reserved:
        raise InvalidInput(f"{attr} {ip} is a reserved IP address and cannot be used.")
    if (
        ip.is_unspecified
        or ip.is_multicast
        or ip.is_loopback
        or ip.is_link_local
        or str(ip) == "255.255.255.255"
    ):
        raise InvalidInput(f"{attr} {ip} cannot be used as a backend address.")
    return str(ip)


# ---- TLS -------------------------------------------------------------------------------------


def secret_ref(field: str, value: Any, *, reason: str) -> str:
    """A secret (container) reference: 1 to 255 RFC 3986 characters."""
    if not isinstance(value, str) or len(value) > MAX_REF_LENGTH or not URI_CHARS.fullmatch(value):
        raise invalid(field, value, reason)
    return value


def tls_ciphers(value: Any, prohibited: Collection[str], *, reason: str) -> str:
    """An OpenSSL cipher string none of whose ciphers the administrator prohibited."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_CIPHERS_LENGTH
        or not CIPHER_CHARS.fullmatch(value)
    ):
        raise invalid("tls_ciphers", value, reason)
    banned = set(prohibited)
    rejected = [c for c in value.split(":") if c in banned]
    if rejected:
        raise InvalidInput(
            "The following ciphers have been prohibited by an administrator: " + ", ".join(rejected)
        )
    return value


def below_minimum(version: str, minimum: str | None) -> bool:
    """Is the (known) TLS ``version`` older than the deployment's ``minimum``?"""
    return bool(minimum) and TLS_VERSION_ORDER.index(version) < TLS_VERSION_ORDER.index(
        str(minimum)
    )
