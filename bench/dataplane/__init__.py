"""bench/dataplane: HTTP throughput through Statera beside a member and a hand-tuned
HAProxy (see __main__)."""
