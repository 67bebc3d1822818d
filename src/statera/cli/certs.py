"""``statera certs init``: create the controller's PKI (two CAs, client cert, heartbeat key).

Mount with ``app.add_typer(certs.app, name="certs")``. Prints paths, never key material.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from statera.domain.errors import StateraError

app = typer.Typer(help="The controller's certificates.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _certs() -> None:
    """The controller's certificates."""


def _default_dir(ctx: typer.Context) -> Path:
    obj = ctx.find_root().obj
    settings = obj.get("settings") if isinstance(obj, dict) else None
    if settings is None:
        from statera.config import load_settings

        settings = load_settings()
    return Path(settings.default.state_path) / "pki"


@app.command("init")
def init(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the PKI lives. Default: <state_path>/pki.")] = None,
    cert_validity_days: Annotated[int, typer.Option(
        "--cert-validity-days", min=1, help="Validity of the client certificate.")] = 30,
) -> None:
    """Create what is missing of the PKI; keep what exists and is valid."""
    from statera.drivers.certs.local_ca import init_pki

    target = directory if directory is not None else _default_dir(ctx)
    try:
        pki = init_pki(target, timedelta(days=cert_validity_days))
    except StateraError as exc:
        typer.echo(f"error: {exc.text}", err=True)
        raise typer.Exit(1) from None
    p = pki.paths
    typer.echo(f"PKI ready in {p.directory}")
    for label, path in (("server CA", p.server_ca_cert), ("client CA", p.client_ca_cert),
                        ("client certificate", p.client_cert),
                        ("heartbeat key", p.heartbeat_key)):
        typer.echo(f"  {label:<19} {path}")
