"""Pools (being written)."""
