"""The ``auto`` driver default: real amphorae where the host can run them, noop (with a
warning naming the reason) where it cannot; explicit choices are never overridden."""

from __future__ import annotations

import logging

import pytest

from statera.cli import services
from statera.config.settings import load_settings


def test_auto_picks_real_drivers_when_the_host_can(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "missing_for_real_amphorae", lambda: None)
    settings = load_settings(None, environ={})
    services.resolve_auto_drivers(settings)
    cw = settings.controller_worker
    assert (cw.compute_driver, cw.network_driver, cw.amphora_driver) == (
        "compute_netns_driver", "network_bridge_driver", "amphora_haproxy_rest_driver")


def test_auto_falls_back_to_noop_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(services, "missing_for_real_amphorae", lambda: "not running as root")
    settings = load_settings(None, environ={})
    with caplog.at_level(logging.WARNING, logger="statera"):
        services.resolve_auto_drivers(settings)
    cw = settings.controller_worker
    assert (cw.compute_driver, cw.network_driver, cw.amphora_driver) == (
        "compute_noop_driver", "network_noop_driver", "amphora_noop_driver")
    assert "not running as root" in caplog.text


def test_explicit_choices_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "missing_for_real_amphorae", lambda: None)
    settings = load_settings(None, environ={
        "STATERA_CONTROLLER_WORKER__COMPUTE_DRIVER": "compute_noop_driver",
        "STATERA_CONTROLLER_WORKER__NETWORK_DRIVER": "noop",
        "STATERA_CONTROLLER_WORKER__AMPHORA_DRIVER": "amphora_noop_driver"})
    services.resolve_auto_drivers(settings)
    assert settings.controller_worker.compute_driver == "compute_noop_driver"
    assert settings.controller_worker.network_driver == "noop"
