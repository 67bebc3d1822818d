"""Control-plane reliability scenarios (CP-*) run against real `statera` processes."""
