"""Command-line entry points: one per process, and `statera up` for all of them at once."""
