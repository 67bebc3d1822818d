"""What the API does: validation, quotas, lock-and-mark PENDING_*, enqueue an operation."""
