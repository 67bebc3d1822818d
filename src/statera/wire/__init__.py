"""Versioned wire formats: agent API payloads and the heartbeat codec."""
