"""The `statera` command."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from statera import __version__
from statera.config import Settings, load_settings
from statera.domain.errors import ConfigError, StateraError

app = typer.Typer(help="Statera: load balancing as a service, Octavia-compatible.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
operation_app = typer.Typer(help="Operations: every accepted change and its progress.",
                            no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(operation_app, name="operation")
console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


@app.callback()
def _main(ctx: typer.Context,
          config: Path | None = typer.Option(
              None, "--config", "-c", envvar="STATERA_CONFIG",
              help="INI config file (octavia.conf names). Default: built-in defaults."),
          ) -> None:
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config
    # `config sample` must work even when the environment holds a bad value.
    if ctx.invoked_subcommand == "config":
        return
    try:
        ctx.obj["settings"] = load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]Configuration error:[/red] {exc.text}")
        raise typer.Exit(2) from None
    from statera.cli.logs import setup_logging

    setup_logging(ctx.obj["settings"].default.debug)


def _fail(exc: StateraError) -> None:
    console.print(f"[red]error:[/red] {exc.text}")
    raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print Statera's version."""
    print(__version__)


@app.command()
def up(ctx: typer.Context) -> None:
    """Run every service in this one process on the configured (or embedded) defaults:
    API, worker, housekeeping. Creates the database on first start."""
    from statera.cli.services import prepare_host, start_housekeeping, start_worker, wire

    settings = _settings(ctx)
    Path(settings.default.state_path).mkdir(parents=True, exist_ok=True)
    try:
        prepare_host(settings)
        w = wire(settings, migrate=True)
    except StateraError as exc:
        _fail(exc)
        return
    worker = start_worker(w)
    housekeeper = start_housekeeping(w)
    health = _start_health_in_up(w)

    def stop_services() -> None:
        if health is not None:
            health.stop()
        housekeeper.stop()
        worker.stop()

    _serve_api(w, extra_stop=stop_services)


def _start_health_in_up(w: Any) -> Any:
    """The health manager inside `statera up`. Without namespace amphorae nothing sends
    heartbeats, so a port already taken there is logged, not fatal."""
    from statera.cli.services import LOG, start_health_manager, uses_netns

    try:
        return start_health_manager(w)
    except (OSError, StateraError) as exc:
        if uses_netns(w.settings):
            raise
        LOG.error("health manager not started: %s", exc)
        return None


def _serve_api(w: Any, extra_stop: Any = None) -> None:
    import uvicorn

    from statera.api.app import create_app
    from statera.cli.services import LOG, on_signals

    api = w.settings.api_settings
    if api.auth_strategy == "noauth" and api.bind_host not in ("127.0.0.1", "::1", "localhost"):
        LOG.warning("auth_strategy is noauth and the API listens on %s: anyone who can reach "
                    "it is an administrator", api.bind_host)
    config = uvicorn.Config(create_app(w.deps), host=api.bind_host, port=api.bind_port,
                            log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    LOG.info("Statera %s API on http://%s:%d (auth %s, database %s)", __version__,
             api.bind_host, api.bind_port, api.auth_strategy, w.db.dialect)
    # uvicorn re-raises the SIGTERM it caught once it has stopped, under the handler that was
    # there before it: with the default one the process would die before the services below
    # stop gracefully (worker hand-over, the health manager's last batch).
    on_signals(lambda signum: None)
    try:
        server.run()
    finally:
        if extra_stop is not None:
            extra_stop()
        w.db.dispose()
    if not server.started:
        raise typer.Exit(1)


@app.command()
def api(ctx: typer.Context) -> None:
    """Run the API service only (the schema must be current: statera db upgrade)."""
    from statera.cli.services import wire

    try:
        w = wire(_settings(ctx), migrate=False)
    except StateraError as exc:
        _fail(exc)
        return
    _serve_api(w)


def _run_service(ctx: typer.Context, start: Callable[[Any], Any], stopping: str) -> None:
    """Prepare the host, wire the service, ``start(wired)``, then wait for SIGTERM/SIGINT
    and stop it (its ``stop()``) — the shape of every single-service command."""
    from statera.cli.services import LOG, on_signals, prepare_host, wire

    try:
        prepare_host(_settings(ctx))
        w = wire(_settings(ctx), migrate=False)
        runner = start(w)
    except StateraError as exc:
        _fail(exc)
        return
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot start: {exc}")
        raise typer.Exit(1) from None
    done = threading.Event()
    on_signals(lambda signum: done.set())
    while not done.wait(0.5):
        pass
    LOG.info("stopping: %s", stopping)
    runner.stop()
    w.db.dispose()


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run the worker service only: claims operations and runs their flows. SIGTERM lets
    running flows finish (up to graceful_shutdown_timeout) and hands the rest over."""
    from statera.cli.services import start_worker

    _run_service(ctx, start_worker, "letting running operations finish")


@app.command()
def housekeeping(ctx: typer.Context) -> None:
    """Run the housekeeping service only: purge expired DELETED rows, rotate amphora
    certificates, keep the spare amphora pool, sweep leftovers. Stops on SIGTERM."""
    from statera.cli.services import start_housekeeping

    _run_service(ctx, start_housekeeping, "housekeeping")


@app.command("health-manager")
def health_manager(ctx: typer.Context) -> None:
    """Run the health manager only: receives amphora heartbeats (UDP, health_manager
    bind_ip:bind_port), writes health, operating statuses and statistics in batches, and
    fails silent amphorae over (circuit breaker: failover_threshold). Stops on SIGTERM."""
    from statera.cli.services import start_health_manager

    _run_service(ctx, start_health_manager, "the health manager")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Create or migrate the database schema."""
    from statera.db.migrate import current_revision, upgrade

    settings = _settings(ctx)
    if settings.database_url.startswith("sqlite"):
        Path(settings.default.state_path).mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.database_url, revision)
    except Exception as exc:
        console.print(f"[red]error:[/red] migration failed: {exc}")
        raise typer.Exit(1) from None
    print(f"database at revision {current_revision(settings.database_url)}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision of the database."""
    from statera.db.migrate import current_revision, head_revision

    rev = current_revision(_settings(ctx).database_url)
    print(f"{rev or '(empty)'} (head is {head_revision()})")


@config_app.command("sample")
def config_sample() -> None:
    """Print a commented config file with every option at its default."""
    from statera.config.settings import sample_config

    print(sample_config())


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Load and validate the config; print the result."""
    try:
        settings = load_settings(ctx.obj["config_path"])
    except ConfigError as exc:
        console.print(f"[red]Configuration error:[/red] {exc.text}")
        raise typer.Exit(2) from None
    print(f"config OK ({settings.source or 'built-in defaults'}); database "
          f"{settings.database_url.split('://', 1)[0]}; {len(settings.networks)} network(s)")


@operation_app.command("list")
def operation_list(
    ctx: typer.Context,
    state: str | None = typer.Option(None, help="PENDING, RUNNING, SUCCEEDED or FAILED."),
    loadbalancer: str | None = typer.Option(None, "--loadbalancer", "--lb",
                                            help="Only this load balancer's operations."),
    limit: int = typer.Option(50, help="Newest N operations."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List operations, newest first, with their state, owner and error."""
    from statera.cli.operations import list_operations

    rows = list_operations(_settings(ctx), state=state, loadbalancer=loadbalancer, limit=limit)
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    table = Table("id", "kind", "load balancer", "state", "step", "owner", "tries", "created",
                  "error")
    for r in rows:
        table.add_row(r["id"], r["kind"], r["load_balancer_id"] or "-", r["state"],
                      r["current_step"] or "-", r["owner"] or "-", str(r["attempts"]),
                      str(r["created_at"])[:19], (r["error"] or "")[:80])
    Console(width=max(Console().width, 180)).print(table)


@operation_app.command("show")
def operation_show(ctx: typer.Context, operation_id: str) -> None:
    """Show one operation in full, including its progress and why it failed."""
    from statera.cli.operations import show_operation

    row = show_operation(_settings(ctx), operation_id)
    if row is None:
        console.print(f"[red]error:[/red] no operation {operation_id}")
        raise typer.Exit(1)
    print(json.dumps(row, indent=2, default=str))


def _mount() -> None:
    from statera.cli import agent, certs, users

    app.add_typer(users.app, name="user", help="Users of the http_basic auth strategy.")
    app.add_typer(certs.app, name="certs", help="The control plane's PKI.")
    app.add_typer(agent.app, name="amphora-agent")


_mount()


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


