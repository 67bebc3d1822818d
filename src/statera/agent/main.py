"""Start the agent: the routes of app.py behind server.py's HTTP/1.1 over mutual TLS.

The server presents ``agent_server_cert`` (key and certificate in one PEM) and accepts only
clients whose certificate the client CA (``agent_server_ca``) signed: CERT_REQUIRED, TLS 1.2
at least, forward-secret AEAD suites, no renegotiation. A new server certificate (PUT
/certificate) gets a new TLS context that new connections use; connections already open
keep theirs, so the agent never restarts for a rotation.

SIGTERM or SIGINT stops accepting, lets requests in progress finish (5 s at most) and exits;
the HAProxy processes live on in their own sessions, and the next agent adopts them.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
from pathlib import Path

from statera.agent.app import App, create_app
from statera.agent.config import AgentConfig, ConfigHolder, load_agent_config
from statera.agent.heartbeat import start_heartbeat_sender
from statera.agent.server import TlsHttpServer, listen

LOG = logging.getLogger("statera.agent")
# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def tls_context(server_pem: str | os.PathLike[str], client_ca: str | os.PathLike[str],
                ) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_ciphers(TLS12_CIPHERS)
    # Renegotiation is a TLS 1.2 relic and a DoS lever.
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(str(server_pem))
    ctx.load_verify_locations(cafile=str(client_ca))
    return ctx


class TlsContextReloader:
    """Called with a new server PEM: builds a new context for the server's next handshakes.
    A fresh context rather than ``load_cert_chain`` on the live one: handshakes run on other
    threads, and OpenSSL does not promise that changing a context under them is safe."""

    def __init__(self, client_ca: str, server: TlsHttpServer | None = None) -> None:
        self.client_ca = client_ca
        self.server = server

    def __call__(self, server_pem: Path) -> None:
        if self.server is not None:
            self.server.reload_context(tls_context(server_pem, self.client_ca))


def setup_logging(debug: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:  # `statera amphora-agent` has set them up already
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
            "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def build_server(config: AgentConfig, config_path: Path | None = None) -> TlsHttpServer:
    """The agent's server, listening (new connections wait in the backlog until
    ``serve_forever``)."""
    context = tls_context(config.server_cert, config.client_ca)
    reloader = TlsContextReloader(config.client_ca)
    app = create_app(ConfigHolder(config, config_path), on_certificate=reloader)
    server = TlsHttpServer(listen(config.bind_host, config.bind_port), context, app)
    reloader.server = server
    return server


def run_agent(config_path: str | os.PathLike[str]) -> None:
    path = Path(config_path)
    config = load_agent_config(path)
    setup_logging(config.debug)
    server = build_server(config, path)

    def stop(signum: int, frame: object) -> None:
        LOG.info("signal %d: stopping", signum)
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("amphora agent %s listening on %s:%d (mutual TLS)", config.amphora_id,
             config.bind_host, config.bind_port)
    # Heartbeats follow the live config (PUT /config may change the controllers).
    app = server.handler
    assert isinstance(app, App)
    agent = app.agent
    heartbeats = start_heartbeat_sender(lambda: agent.config, agent.haproxy)
    try:
        server.serve_forever()
    finally:
        heartbeats.stop()
    LOG.info("amphora agent %s stopped", config.amphora_id)


if __name__ == "__main__":  # python -m statera.agent.main CONFIG
    run_agent(sys.argv[1])
