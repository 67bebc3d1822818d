"""Periodic cleanup, certificate rotation and the spare pool (issue: housekeeping)."""
