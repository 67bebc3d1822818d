"""Heartbeat receiver, status updater and failover requests (issue: health manager)."""
