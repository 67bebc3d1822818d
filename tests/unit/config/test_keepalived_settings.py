"""[keepalived_vrrp]: upstream's option names, sub-second VRRPv3 adverts by default, and
values keepalived would refuse stopped at start."""

from __future__ import annotations

import pytest

from statera.config.settings import load_settings
from statera.domain.errors import ConfigError

P = "STATERA_KEEPALIVED_VRRP__"


def test_defaults_are_sub_second_vrrp_v3() -> None:
    k = load_settings(environ={}).keepalived_vrrp
    assert (k.vrrp_version, k.vrrp_advert_int, k.vrrp_check_interval, k.vrrp_fail_count,
            k.vrrp_success_count, k.vrrp_garp_refresh_interval,
            k.vrrp_garp_refresh_count) == (3, 0.2, 1, 2, 2, 5, 2)


def test_upstream_timing_is_still_available(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "statera.conf"
    conf.write_text("[keepalived_vrrp]\nvrrp_version = 2\nvrrp_advert_int = 1\n"
                    "vrrp_check_interval = 5\n")
    k = load_settings(conf, environ={}).keepalived_vrrp
    assert (k.vrrp_version, k.vrrp_advert_int, k.vrrp_check_interval) == (2, 1.0, 5)


@pytest.mark.parametrize("env", [
    {P + "VRRP_ADVERT_INT": "0.123"}, {P + "VRRP_ADVERT_INT": "41"},
    {P + "VRRP_ADVERT_INT": "0"}, {P + "VRRP_VERSION": "2"},
    {P + "VRRP_VERSION": "2", P + "VRRP_ADVERT_INT": "1.5"}, {P + "VRRP_VERSION": "4"},
    {P + "VRRP_CHECK_INTERVAL": "0"}, {P + "VRRP_FAIL_COUNT": "x"}])
def test_values_keepalived_would_refuse_stop_the_start(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"\[keepalived_vrrp\]"):
        load_settings(environ=env)
