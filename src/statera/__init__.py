"""Statera: load-balancing-as-a-service in the design of OpenStack Octavia."""

__version__ = "0.1.0"
