"""Agent settings, read from an INI file in upstream's names (see wire.agent).

The file is the one the controller rendered at build time; PUT /config replaces it. Only
the controller list and the heartbeat interval change at run time; the rest applies on the
next start, and a new file may never name another amphora.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from statera.agent.errors import BadRequest
from statera.agent.files import write_atomic
from statera.wire.agent_core import AgentConfigFile, parse_agent_config

AgentConfig = AgentConfigFile


def load_agent_config(path: str | os.PathLike[str]) -> AgentConfig:
    return parse_agent_config(Path(path).read_text())


@dataclass
class ConfigHolder:
    """The live config and the file it came from."""

    config: AgentConfig
    path: Path | None = None

    def replace(self, text: str) -> AgentConfig:
        try:
            new = parse_agent_config(text)
        except ValueError as exc:
            raise BadRequest("Invalid agent configuration", str(exc)) from None
        if new.amphora_id != self.config.amphora_id:
            raise BadRequest("Invalid agent configuration",
                             "the configuration names another amphora")
        if self.path is not None:
            # It may hold the heartbeat key.
            write_atomic(self.path, text.encode(), mode=0o600)
        live = self.config
        self.config = AgentConfig(**{
            **{f: getattr(live, f) for f in live.__dataclass_fields__},
            "controller_ip_port_list": new.controller_ip_port_list,
            "heartbeat_interval": new.heartbeat_interval,
            "heartbeat_key": new.heartbeat_key or live.heartbeat_key,
        })
        return self.config
