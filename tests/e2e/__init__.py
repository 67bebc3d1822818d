"""End-to-end tests: a real ``statera up`` process driven by the stock OpenStack clients."""
