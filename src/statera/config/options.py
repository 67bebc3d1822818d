"""How settings are declared, parsed and described: a field's type comes from its annotation,
its help text and allowed values from its metadata."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from statera.domain.errors import ConfigError


def opt(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
        minimum: float | None = None, maximum: float | None = None, secret: bool = False) -> Any:
    """Declare one option of a section dataclass."""
    meta = {"help": help, "choices": choices, "min": minimum, "max": maximum, "secret": secret}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: json.loads(json.dumps(default)),
                                 metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def parse_value(section: str, name: str, raw: str, tp: Any, meta: dict[str, Any]) -> Any:
    """Turn one INI string into the option's type, or raise ConfigError naming the option."""
    where = f"[{section}] {name}"
    tp, optional = _unwrap_optional(tp)
    text = raw.strip()
    if optional and text == "":
        return None
    try:
        if tp is bool:
            low = text.lower()
            if low in _TRUE:
                value: Any = True
            elif low in _FALSE:
                value = False
            else:
                raise ValueError("expected true or false")
        elif tp is int:
            value = int(text)
        elif tp is float:
            value = float(text)
        elif tp is str:
            value = text
        elif typing.get_origin(tp) is list:
            value = [item.strip() for item in text.split(",") if item.strip()]
        elif typing.get_origin(tp) is dict:
            value = {}
            for item in (i.strip() for i in text.split(",") if i.strip()):
                key, sep, val = item.partition(":")
                if not sep:
                    raise ValueError(f"expected key:value pairs, got {item!r}")
                value[key.strip()] = val.strip()
        else:  # pragma: no cover - a declaration error, not a user error
            raise TypeError(f"unsupported option type {tp!r}")
    except ValueError as exc:
        raise ConfigError(f"{where}: {raw!r} is not valid ({exc}).") from None
    check_value(where, value, meta)
    return value


def check_value(where: str, value: Any, meta: dict[str, Any]) -> None:
    choices = meta.get("choices")
    items = value if isinstance(value, list) else [value]
    if choices:
        for item in items:
            if item is not None and item not in choices:
                raise ConfigError(f"{where}: {item!r} is not one of {', '.join(choices)}.")
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and value < low:
            raise ConfigError(f"{where}: {value} is below the minimum of {low}.")
        if high is not None and value > high:
            raise ConfigError(f"{where}: {value} is above the maximum of {high}.")


def format_value(value: Any) -> str:
    """The INI spelling of a value, as the sample config shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def section_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]
