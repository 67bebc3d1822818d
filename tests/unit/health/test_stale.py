"""Failover decisions and the circuit breaker, as a pure function of what a scan found."""

from __future__ import annotations

from datetime import datetime

from statera.health.stale import BreakerState, StaleAmphora, decide, trips

T0 = datetime(2024, 1, 1)


def stale(n: int, status: str = "ALLOCATED") -> list[StaleAmphora]:
    return [StaleAmphora(f"amp{i}", status, f"lb{i}", T0) for i in range(n)]


def test_a_few_silent_amphorae_are_failed_over() -> None:
    d = decide(stale(2), monitored=10, threshold=5, state=BreakerState(), now=0, hold=3)
    assert d.failover == ("amp0", "amp1")
    assert d.stop == () and not d.state.open and not d.opened


def test_one_silent_amphora_alone_is_failed_over() -> None:
    d = decide(stale(1), monitored=1, threshold=5, state=BreakerState(), now=0, hold=3)
    assert d.failover == ("amp0",)


def test_threshold_opens_the_breaker_and_stops_the_allocated_ones() -> None:
    found = [*stale(4), StaleAmphora("old", "FAILOVER_STOPPED", "lbx", T0)]
    d = decide(found, monitored=100, threshold=5, state=BreakerState(), now=0, hold=3)
    assert d.failover == ()
    assert d.stop == ("amp0", "amp1", "amp2", "amp3")
    assert d.state.open and d.opened


def test_everyone_silent_opens_the_breaker_even_below_the_threshold() -> None:
    d = decide(stale(3), monitored=3, threshold=10, state=BreakerState(), now=0, hold=3)
    assert d.state.open and d.failover == ()


def test_opened_is_reported_once_per_episode() -> None:
    state = BreakerState()
    opened = []
    for now in range(5):
        d = decide(stale(6), monitored=6, threshold=5, state=state, now=now, hold=3)
        state = d.state
        opened.append(d.opened)
    assert opened == [True, False, False, False, False]


def test_breaker_closes_only_after_a_quiet_hold_then_fails_over_the_rest() -> None:
    state = decide(stale(6), 6, 5, BreakerState(), now=0, hold=3).state
    # Heartbeats resume: most are heard again, two still silent.
    rest = stale(2, status="FAILOVER_STOPPED")
    d = decide(rest, monitored=6, threshold=5, state=state, now=1, hold=3)
    assert d.failover == () and d.state.open and not d.closed
    d = decide(rest, monitored=6, threshold=5, state=d.state, now=3.9, hold=3)
    assert d.failover == () and d.state.open
    d = decide(rest, monitored=6, threshold=5, state=d.state, now=4.0, hold=3)
    assert d.closed and not d.state.open
    assert d.failover == ("amp0", "amp1")


def test_relapse_during_the_hold_restarts_it() -> None:
    state = decide(stale(6), 6, 5, BreakerState(), now=0, hold=3).state
    state = decide(stale(1), 6, 5, state, now=1, hold=3).state
    state = decide(stale(6), 6, 5, state, now=2, hold=3).state
    d = decide(stale(1), 6, 5, state, now=4.5, hold=3)
    assert d.state.open and d.failover == ()


def test_threshold_zero_turns_the_breaker_off() -> None:
    assert not trips(1000, 1000, 0)
    d = decide(stale(50), monitored=50, threshold=0, state=BreakerState(), now=0, hold=3)
    assert len(d.failover) == 50


def test_trips_table() -> None:
    assert trips(5, 100, 5)
    assert not trips(4, 100, 5)
    assert trips(2, 2, 5)
    assert not trips(1, 1, 5)
    assert not trips(0, 0, 5)
