"""Settings: defaults, INI file, environment overrides, and a clear message per bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from statera.config import load_settings
from statera.config.settings import sample_config
from statera.domain.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "statera.conf"
    path.write_text(text)
    return path


def test_defaults_match_octavia() -> None:
    s = load_settings(environ={})
    assert s.api_settings.bind_port == 9876
    assert s.api_settings.pagination_max_limit == 1000
    assert s.haproxy_amphora.timeout_client_data == 50000
    assert s.controller_worker.loadbalancer_topology == "SINGLE"
    assert s.quotas.default_load_balancer_quota == -1
    assert s.database_url.endswith("/statera.db")
    assert [n.name for n in s.networks] == ["public"]
    assert s.networks[0].subnet_name == "public-subnet"


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[api_settings]\nbind_port = 1234\nauth_strategy = http_basic\n"
                           "[quotas]\ndefault_member_quota = 7\n")
    s = load_settings(path, environ={"STATERA_API_SETTINGS__BIND_PORT": "4321"})
    assert s.api_settings.bind_port == 4321
    assert s.api_settings.auth_strategy == "http_basic"
    assert s.quotas.default_member_quota == 7
    assert s.source == str(path)


def test_lists_and_dicts(tmp_path: Path) -> None:
    path = write(tmp_path, "[api_settings]\ndefault_listener_tls_versions = TLSv1.3\n"
                           "enabled_provider_drivers = amphora:Ours, other:Theirs\n")
    s = load_settings(path, environ={})
    assert s.api_settings.default_listener_tls_versions == ["TLSv1.3"]
    assert s.api_settings.enabled_provider_drivers == {"amphora": "Ours", "other": "Theirs"}


@pytest.mark.parametrize("text,message", [
    ("[api_settings]\nbind_port = high\n", "[api_settings] bind_port: 'high' is not valid"),
    ("[api_settings]\nbind_port = 70000\n", "above the maximum of 65535"),
    ("[api_settings]\nauth_strategy = keystone\n", "'keystone' is not one of noauth, http_basic"),
    ("[api_settings]\nallow_pagination = maybe\n", "expected true or false"),
    ("[api_settings]\nbogus = 1\n", "[api_settings] bogus: unknown option"),
    ("[nonsense]\nx = 1\n", "[nonsense]: unknown section"),
    ("[quotas]\ndefault_pool_quota = -2\n", "below the minimum of -1"),
    ("[controller_worker]\nloadbalancer_topology = TRIPLE\n", "'TRIPLE' is not one of"),
    ("[api_settings]\ndefault_provider_driver = f5\n", "not in enabled_provider_drivers"),
    ("[database]\nconnection = oracle://x\n", "only sqlite, mysql/mariadb and postgresql"),
    ("[network:a]\n", "[network:a]: cidr is required"),
    ("[network:a]\ncidr = 10.0.0.1/24\n", "has host bits set"),
    ("[network:a]\ncidr = 10.0.0.0/24\ngateway_ip = 10.1.0.1\n", "outside 10.0.0.0/24"),
    ("[network:a]\ncidr = 10.0.0.0/24\nallocation_pool = 10.0.0.9-10.0.0.2\n", "FIRST-LAST"),
    ("[network:a]\ncidr = 10.0.0.0/24\n[network:b]\ncidr = 10.0.0.128/25\n", "overlap"),
    ("[network:a]\ncidr = 10.0.0.0/24\nbridge = a-very-long-bridge-name\n", "1-15 letters"),
    ("[network:a]\ncidr = 10.0.0.0/24\ncolour = red\n", "unknown option(s) colour"),
])
def test_bad_values_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(err.value)


def test_bad_environment_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\[quotas\] default_pool_quota"):
        load_settings(environ={"STATERA_QUOTAS__DEFAULT_POOL_QUOTA": "lots"})
    with pytest.raises(ConfigError, match="no section 'nope'"):
        load_settings(environ={"STATERA_NOPE__X": "1"})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent/statera.conf", environ={})


def test_declared_networks(tmp_path: Path) -> None:
    path = write(tmp_path, "[network:blue]\ncidr = 192.0.2.0/28\n"
                           "allocation_pool = 192.0.2.5-192.0.2.9\nproject_id = p1\n")
    (net,) = load_settings(path, environ={}).networks
    assert (net.gateway_ip, net.allocation_start, net.allocation_end) == (
        "192.0.2.1", "192.0.2.5", "192.0.2.9")
    assert net.bridge == "st-blue" and net.project_id == "p1"
    # Ids are stable across restarts.
    assert load_settings(path, environ={}).networks[0].id == net.id


def test_sample_config_loads_back(tmp_path: Path) -> None:
    text = sample_config()
    assert "[api_settings]" in text and "#auth_strategy = noauth" in text
    option = re.compile(r"#[a-z_]+ = ")
    uncommented = "\n".join(
        line[1:] if option.match(line) and not line.startswith("#host") else line
        for line in text.splitlines())
    s = load_settings(write(tmp_path, uncommented), environ={})
    assert s.api_settings.bind_port == 9876
