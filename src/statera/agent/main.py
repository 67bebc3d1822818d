"""Start the agent: uvicorn with mutual TLS.

The server presents ``agent_server_cert`` (key and certificate in one PEM) and accepts only
clients whose certificate the client CA (``agent_server_ca``) signed: CERT_REQUIRED, TLS 1.2
at least. A new server certificate (PUT /certificate) is loaded into the live TLS context:
handshakes from then on present it, connections and requests already open are untouched, so
the agent never restarts for a rotation.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
from pathlib import Path

import uvicorn

from statera.agent.app import create_app
from statera.agent.config import AgentConfig, ConfigHolder, load_agent_config

LOG = logging.getLogger("statera.agent")
# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class TlsContextReloader:
    def __init__(self) -> None:
        self.context: ssl.SSLContext | None = None

    def __call__(self, server_pem: Path) -> None:
        if self.context is not None:
            self.context.load_cert_chain(str(server_pem))


def setup_logging(debug: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:  # `statera amphora-agent` has set them up already
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def build_server(config: AgentConfig, config_path: Path | None = None) -> uvicorn.Server:
    reloader = TlsContextReloader()
    app = create_app(ConfigHolder(config, config_path), on_certificate=reloader)
    uconfig = uvicorn.Config(
        app, host=config.bind_host, port=config.bind_port,
        ssl_certfile=config.server_cert, ssl_keyfile=config.server_cert,
        ssl_ca_certs=config.client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED,
        ssl_ciphers=TLS12_CIPHERS, log_config=None, lifespan="off", server_header=False,
        timeout_graceful_shutdown=5)
    uconfig.load()
    assert uconfig.ssl is not None
    uconfig.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    # Renegotiation is a TLS 1.2 relic and a DoS lever.
    uconfig.ssl.options |= ssl.OP_NO_RENEGOTIATION
    reloader.context = uconfig.ssl
    return uvicorn.Server(uconfig)


def run_agent(config_path: str | os.PathLike[str]) -> None:
    path = Path(config_path)
    config = load_agent_config(path)
    setup_logging(config.debug)
    server = build_server(config, path)
    LOG.info("amphora agent %s listening on %s:%d (mutual TLS)", config.amphora_id,
             config.bind_host, config.bind_port)
    server.run()


if __name__ == "__main__":  # python -m statera.agent.main CONFIG
    run_agent(sys.argv[1])
