"""Linux plumbing for namespace amphorae: a guarded `ip` runner, host bridges, names."""
