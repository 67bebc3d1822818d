"""Typed settings read from an octavia.conf-shaped INI file, one object per process."""

from statera.config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
