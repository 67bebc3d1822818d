"""The agent's server set-up: mutual TLS settings, live certificate reload, the CLI."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

from typer.testing import CliRunner

from statera.agent.main import TlsContextReloader, build_server
from statera.cli.agent import app as agent_app
from statera.wire.agent_core import AgentConfigFile
from tests.unit.agent.conftest import AgentEnv, free_port


def _on_a_free_port(env: AgentEnv) -> AgentConfigFile:
    return AgentConfigFile(**{**env.config.__dict__, "bind_port": free_port()})


def test_server_requires_client_certs_and_tls_1_2(agent_env: AgentEnv) -> None:
    server = build_server(_on_a_free_port(agent_env))
    try:
        ctx = server.context
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.options & ssl.OP_NO_RENEGOTIATION
        assert not any("CBC" in c["name"] or c["protocol"] in ("TLSv1", "TLSv1.1")
                       for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3")
        assert server.address[0] == "127.0.0.1"
    finally:
        server.socket.close()


def test_reloader_swaps_in_a_new_context_for_new_connections(agent_env: AgentEnv,
                                                             tmp_path: Path) -> None:
    reloader = TlsContextReloader(agent_env.config.client_ca)
    reloader(Path("/nonexistent"))  # no server yet: nothing to do
    server = build_server(_on_a_free_port(agent_env))
    try:
        reloader.server = server
        old = server.context
        new = tmp_path / "new.pem"
        new.write_bytes(agent_env.pki.issue_server_cert(agent_env.amp)[0])
        reloader(new)
        assert server.context is not old
        assert server.context.verify_mode == ssl.CERT_REQUIRED
    finally:
        server.socket.close()


def test_cli_reports_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "agent.conf"
    bad.write_text("[amphora_agent]\namphora_id = nope\n")
    result = CliRunner().invoke(agent_app, ["--config", str(bad)])
    assert result.exit_code == 2
    assert "must be a UUID" in result.output
    missing_cert = tmp_path / "agent2.conf"
    missing_cert.write_text(f"[amphora_agent]\namphora_id = {uuid.uuid4()}\n"
                            f"agent_server_cert = {tmp_path}/none.pem\n")
    result = CliRunner().invoke(agent_app, ["--config", str(missing_cert)])
    assert result.exit_code == 2
    assert "error:" in result.output
    assert CliRunner().invoke(agent_app, ["--config", str(tmp_path / "x")]).exit_code == 2
