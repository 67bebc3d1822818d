"""``statera user add|list|delete``: the users of the http_basic auth strategy."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from statera.domain.errors import StateraError
from statera.services.policy import KNOWN_ROLES

if TYPE_CHECKING:
    from statera.db.database import Database

app = typer.Typer(help="Manage the users of the http_basic auth strategy.", no_args_is_help=True)


def _database(ctx: typer.Context) -> Database:
    from statera.db.database import Database

    settings = ctx.obj["settings"]
    return Database(settings.database_url)


def _users():  # type: ignore[no-untyped-def]
    from statera.services import users

    return users


def _fail(exc: StateraError) -> typer.Exit:
    typer.echo(f"error: {exc.text}", err=True)
    return typer.Exit(1)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (the Basic auth login).")],
    project: Annotated[str, typer.Option("--project", help="The user's project id.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role", help=f"A role (repeat for several): {', '.join(sorted(KNOWN_ROLES))}."
        ),
    ],
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            help="The password (visible in the process list; prefer the prompt "
            "or --password-stdin).",
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
) -> None:
    """Add a user."""
    if password is not None and password_stdin:
        typer.echo("error: give --password or --password-stdin, not both", err=True)
        raise typer.Exit(2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = _database(ctx)
    try:
        user = _users().add_user(db, name, password, project, role)
    except StateraError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    typer.echo(f"added user {user.name} (project {user.project_id}, roles {', '.join(user.roles)})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the users (names, projects and roles; never passwords)."""
    db = _database(ctx)
    try:
        found = _users().list_users(db)
    finally:
        db.dispose()
    if not found:
        typer.echo("no users")
        return
    width = max(len("NAME"), *(len(u.name) for u in found))
    pwidth = max(len("PROJECT"), *(len(u.project_id) for u in found))
    typer.echo(f"{'NAME':<{width}}  {'PROJECT':<{pwidth}}  ROLES")
    for u in found:
        typer.echo(f"{u.name:<{width}}  {u.project_id:<{pwidth}}  {','.join(u.roles)}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user to delete.")],
) -> None:
    """Delete a user. A running API may accept its cached credentials for up to a minute."""
    db = _database(ctx)
    try:
        _users().delete_user(db, name)
    except StateraError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    typer.echo(f"deleted user {name}")
