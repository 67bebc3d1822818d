"""Field types shared by every resource's request models."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("Control characters and line breaks are not allowed.")
    return value


def _uuid_like(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                        r"[0-9a-fA-F]{12}", value):
        raise ValueError("Value should be UUID format")
    return value.lower() if "-" in value else (
        f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}".lower())


# Free text (names, descriptions): at most 255 characters, no line breaks or controls.
Name = Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_control)]
Text255 = Name
UUID = Annotated[str, StringConstraints(max_length=36), AfterValidator(_uuid_like)]
# Project ids are Keystone ids (32 hex) or any id-shaped string without controls.
ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=36),
                      AfterValidator(_no_control)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=255),
                AfterValidator(_no_control)]
Tags = Annotated[list[Tag], Field(max_length=100)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Body(BaseModel):
    """Every request model: unknown attributes are refused, as WSME refused them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def given(model: BaseModel) -> dict[str, Any]:
    """The attributes the client actually sent (null included), for PUT semantics."""
    return {k: getattr(model, k) for k in model.model_fields_set}
