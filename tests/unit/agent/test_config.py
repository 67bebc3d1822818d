"""The agent config file: upstream's names, strict values, secrets never shown."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from statera.agent.config import ConfigHolder, load_agent_config
from statera.agent.errors import BadRequest
from statera.wire.agent import AgentConfigFile, parse_agent_config, render_agent_config

AMP = "4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d1e"


def test_round_trip_and_upstream_names(tmp_path: Path) -> None:
    conf = AgentConfigFile(amphora_id=AMP, haproxy_namespace="amphora-haproxy",
                           controller_ip_port_list=("192.0.2.1:5555", "[2001:db8::1]:5555"),
                           heartbeat_interval=3, heartbeat_key="k" * 32, debug=True)
    text = render_agent_config(conf)
    for name in ("[amphora_agent]", "agent_server_cert", "agent_server_ca",
                 "[haproxy_amphora]", "bind_port = 9443", "[health_manager]",
                 "controller_ip_port_list"):
        assert name in text
    (tmp_path / "a.conf").write_text(text)
    assert load_agent_config(tmp_path / "a.conf") == conf


def test_the_heartbeat_key_never_shows_in_repr() -> None:
    conf = AgentConfigFile(amphora_id=AMP, heartbeat_key="super-secret-key")
    assert "super-secret-key" not in repr(conf)


@pytest.mark.parametrize("text, error", [
    ("[amphora_agent]\n", "amphora_id is required"),
    ("[amphora_agent]\namphora_id = nope\n", "must be a UUID"),
    (f"[amphora_agent]\namphora_id = {AMP}\nhaproxy_namespace = ../x\n", "haproxy_namespace"),
    (f"[amphora_agent]\namphora_id = {AMP}\n[haproxy_amphora]\nbind_port = x\n", "bind_port"),
    (f"[amphora_agent]\namphora_id = {AMP}\n[health_manager]\n"
     "controller_ip_port_list = evil;rm\n", "controller_ip_port_list"),
    ("not an ini file", "MissingSectionHeaderError"),
])
def test_bad_files_name_the_option(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_agent_config(text)


def test_values_cannot_smuggle_lines() -> None:
    with pytest.raises(ValueError, match="span lines"):
        render_agent_config(AgentConfigFile(amphora_id=AMP, base_path="/x\n[DEFAULT]"))


def test_holder_applies_only_mutable_options(tmp_path: Path) -> None:
    path = tmp_path / "agent.conf"
    conf = AgentConfigFile(amphora_id=AMP, heartbeat_key="old")
    holder = ConfigHolder(conf, path)
    new = AgentConfigFile(amphora_id=AMP, heartbeat_interval=2, base_path="/elsewhere",
                          controller_ip_port_list=("192.0.2.9:5555",))
    live = holder.replace(render_agent_config(new))
    assert live.heartbeat_interval == 2
    assert live.controller_ip_port_list == ("192.0.2.9:5555",)
    assert live.base_path == conf.base_path
    assert live.heartbeat_key == "old"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(BadRequest):
        holder.replace(render_agent_config(AgentConfigFile(amphora_id=str(uuid.uuid4()))))
