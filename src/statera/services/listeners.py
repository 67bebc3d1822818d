"""Listeners (being written)."""
