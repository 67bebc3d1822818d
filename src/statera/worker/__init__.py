"""The worker: claims operations with a lease and runs their flows step by step."""
