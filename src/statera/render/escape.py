"""Turning values into haproxy.cfg words, or refusing them.

HAProxy 2.6 reads each config line with ``parse_line``: words are split on blanks outside
quotes; ``#`` outside quotes starts a comment; CR, LF and NUL end the line; inside double
quotes a backslash escapes ``\\ " $ # '`` and makes ``\\n``, ``\\r``, ``\\t``, ``\\xHH``
into bytes, and ``$NAME`` / ``${NAME}`` expand environment variables. Some arguments are
then read a second time as log-format strings, where ``%[…]`` runs a sample expression.

So the rules here are: a value with any control or line-separator character is refused
(the API already rejects those; this is the second wall); every other free-form value is
written as one double-quoted word with ``\\``, ``"`` and ``$`` escaped, and with ``%``
doubled where HAProxy reads a log-format; values that must fit a grammar (ids, addresses,
header names, cipher lists…) are checked against it and refused otherwise.

Everything that reaches the file is a `Cfg`: the template environment refuses plain strings.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from statera.domain.errors import StateraError


class RenderError(StateraError):
    """A value cannot be written into haproxy.cfg safely. Permanent: a retry renders the
    same refusal, so the operation should revert."""

    retryable = False
    message = "Cannot render the load balancer's configuration."


class Cfg(str):
    """Text already made safe for the exact place in haproxy.cfg it was made for."""

    __slots__ = ()


# Unicode categories that must never reach the file: controls (C0, C1 including U+0085),
# format characters (bidi overrides, zero-width), surrogates, private use, line and paragraph
# separators (U+2028, U+2029).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# An absolute amphora-side path the operator chose: no blanks, quotes or shell/cfg specials.
_PATH = re.compile(r"/[A-Za-z0-9._/@+=,:-]*")
# Peer names and similar identifiers HAProxy accepts as proxy/peer names.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# What a normalized address or network prints as (no IPv6 scope id).
_ADDRESS_TEXT = re.compile(r"[0-9a-f.:]+")
_NETWORK_TEXT = re.compile(r"[0-9a-f.:]+/[0-9]{1,3}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refuse(what: str, value: object, reason: str) -> RenderError:
    return RenderError(f"{what}: {reason} (value {_shown(value)}); refusing to render it.")


def plain_text(value: object, what: str) -> str:
    """``value`` as a str free of control and line-separator characters, or RenderError."""
    if not isinstance(value, str):
        raise refuse(what, value, "a string is required")
    if _PRINTABLE_ASCII.fullmatch(value):
        return value
    for ch in value:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise refuse(what, value, f"it contains the control character U+{ord(ch):04X}")
    return value


def quoted(value: object, what: str) -> Cfg:
    """One double-quoted HAProxy word that HAProxy reads back as exactly ``value``."""
    text = plain_text(value, what)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return Cfg(f'"{text}"')


def log_format_text(value: object, what: str) -> str:
    """``value`` as literal text inside a log-format string: ``%`` can open no expression."""
    return plain_text(value, what).replace("%", "%%")


def quoted_log_format(value: object, what: str) -> Cfg:
    """One quoted word that HAProxy reads as a log-format printing exactly ``value``."""
    return quoted(log_format_text(value, what), what)


def matching(value: object, pattern: re.Pattern[str], what: str, expected: str) -> Cfg:
    """``value`` itself when it is entirely of the form ``pattern`` describes."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise refuse(what, value, f"{expected} is required")
    return Cfg(value)


def object_id(value: object, what: str) -> Cfg:
    """An object id (used for section, server and ACL names and file names): a UUID."""
    return matching(value, _UUID, what, "a lowercase UUID")


def name(value: object, what: str) -> Cfg:
    return matching(value, _NAME, what, "a name of letters, digits and ._:-")


def path(value: object, what: str) -> Cfg:
    """An absolute amphora-side path; ``..`` segments are refused too."""
    cfg = matching(value, _PATH, what, "an absolute path of letters, digits and ._/@+=,:-")
    if ".." in cfg.split("/"):
        raise refuse(what, value, "'..' is not allowed in a path")
    return cfg


def join_path(directory: Cfg, file_name: str) -> Cfg:
    """``file_name`` (already of a safe fixed shape) under a checked directory."""
    return path(directory.rstrip("/") + "/" + file_name, "file path")


def integer(value: object, what: str, low: int, high: int) -> Cfg:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise refuse(what, value, f"an integer from {low} to {high} is required")
    return Cfg(str(value))


def ip_address(value: object, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A plain IP address. Python's parser accepts IPv6 scope ids (``fe80::1%<anything>``),
    which would carry arbitrary text into the file: those are refused."""
    try:
        if not isinstance(value, str):
            raise ValueError
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise refuse(what, value, "an IP address is required") from None
    if not _ADDRESS_TEXT.fullmatch(str(ip)):
        raise refuse(what, value, "an IP address without a scope id is required")
    return ip


def address_port(address: object, port: object, what: str) -> Cfg:
    """``ip:port`` as HAProxy reads it (IPv6 in brackets), normalized."""
    ip = ip_address(address, what)
    number = integer(port, f"{what} port", 1, 65535)
    return Cfg(f"[{ip}]:{number}" if ip.version == 6 else f"{ip}:{number}")


def cidr(value: object) -> Cfg | None:
    """A normalized network, or None if ``value`` is not one."""
    if not isinstance(value, str) or not value.isascii() or value.strip() != value:
        return None
    if "%" in value:  # an IPv6 scope id: Python parses it, HAProxy must never see it
        return None
    try:
        text = str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return None
    return Cfg(text) if _NETWORK_TEXT.fullmatch(text) else None


def literal(text: str) -> Cfg:
    """A word or phrase written by the renderer itself, never from user data."""
    return Cfg(text)
