"""The one Jinja environment the renderers share: templates from statera/render/templates,
strict about undefined names, and refusing any value that did not go through the escaping
functions (only ``Cfg`` strings reach a rendered file)."""

from __future__ import annotations

import jinja2

from statera.render.escape import Cfg


def _only_cfg(value: object) -> object:
    if isinstance(value, Cfg):
        return value
    raise TypeError(f"a config template got an unescaped {type(value).__name__}: {value!r}")


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("statera.render", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    finalize=_only_cfg,
)
