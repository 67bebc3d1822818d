"""The agent's server set-up: mutual TLS settings, live certificate reload, the CLI."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

from typer.testing import CliRunner

from statera.agent.main import TlsContextReloader, build_server
from statera.cli.agent import app as agent_app
from tests.unit.agent.conftest import AgentEnv


def test_server_requires_client_certs_and_tls_1_2(agent_env: AgentEnv) -> None:
    server = build_server(agent_env.config)
    ctx = server.config.ssl
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert not any("CBC" in c["name"] or c["protocol"] in ("TLSv1", "TLSv1.1")
                   for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3")


def test_reloader_loads_a_new_chain_into_the_live_context(agent_env: AgentEnv,
                                                          tmp_path: Path) -> None:
    reloader = TlsContextReloader()
    reloader(Path("/nonexistent"))  # no context yet: nothing to do
    reloader.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    new = tmp_path / "new.pem"
    new.write_bytes(agent_env.pki.issue_server_cert(agent_env.amp)[0])
    reloader(new)


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
