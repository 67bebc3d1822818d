"""Users of the http_basic strategy: services.users and the `statera user` commands."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from statera.api.auth import verify_password
from statera.cli.users import app as users_app
from statera.db import models as m
from statera.db.database import Database
from statera.db.migrate import upgrade
from statera.domain.errors import Conflict, InvalidInput, NotFound
from statera.services import users
from tests.conftest import build_api, make_settings


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = make_settings(tmp_path).database_url
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_add_list_delete(db: Database) -> None:
    info = users.add_user(db, "alice", "s3cret", "p1", ["member", "reader", "member"])
    assert (info.name, info.project_id, info.roles) == ("alice", "p1", ["member", "reader"])
    users.add_user(db, "admin", "pw", "ops", ["admin"])
    assert [u.name for u in users.list_users(db)] == ["admin", "alice"]
    users.delete_user(db, "alice")
    assert [u.name for u in users.list_users(db)] == ["admin"]
    with pytest.raises(NotFound):
        users.delete_user(db, "alice")


def test_password_is_stored_as_a_hash_the_api_accepts(db: Database) -> None:
    users.add_user(db, "alice", "s3cret", "p1", ["member"])
    with db.read() as s:
        stored = s.get(m.User, "alice").password_hash
    assert "s3cret" not in stored
    assert verify_password("s3cret", stored)
    assert not verify_password("wrong", stored)
    assert not hasattr(users.list_users(db)[0], "password_hash")


@pytest.mark.parametrize(
    ("name", "password", "project", "roles"),
    [
        ("", "pw", "p1", ["member"]),
        ("a:b", "pw", "p1", ["member"]),
        ("bob", "", "p1", ["member"]),
        ("bob", "pw", "", ["member"]),
        ("bob", "pw", "p" * 37, ["member"]),
        ("bob", "pw", "p1", []),
        ("bob", "pw", "p1", ["member", "superuser"]),
    ],
)
def test_bad_input_is_refused(
    db: Database, name: str, password: str, project: str, roles: list[str]
) -> None:
    with pytest.raises(InvalidInput):
        users.add_user(db, name, password, project, roles)
    assert users.list_users(db) == []


def test_names_are_unique(db: Database) -> None:
    users.add_user(db, "alice", "pw", "p1", ["member"])
    with pytest.raises(Conflict):
        users.add_user(db, "alice", "other", "p2", ["reader"])


def test_an_added_user_can_call_the_api(tmp_path: Path) -> None:
    a = build_api(tmp_path, STATERA_API_SETTINGS__AUTH_STRATEGY="http_basic")
    try:
        users.add_user(a.deps.db, "alice", "s3cret", "pa", ["member"])
        good = base64.b64encode(b"alice:s3cret").decode()
        bad = base64.b64encode(b"alice:nope").decode()
        client: TestClient = a.client
        r = client.get("/v2/lbaas/loadbalancers", headers={"Authorization": f"Basic {good}"})
        assert r.status_code == 200
        r = client.get("/v2/lbaas/loadbalancers", headers={"Authorization": f"Basic {bad}"})
        assert r.status_code == 401
    finally:
        a.client.close()
        a.deps.db.dispose()


# ---- the commands ---------------------------------------------------------------------------


def _cli(tmp_path: Path) -> tuple[typer.Typer, dict[str, object]]:
    settings = make_settings(tmp_path)
    upgrade(settings.database_url)
    return users_app, {"settings": settings}


def test_commands(tmp_path: Path) -> None:
    app, obj = _cli(tmp_path)
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "add",
            "alice",
            "--project",
            "p1",
            "--role",
            "member",
            "--role",
            "reader",
            "--password-stdin",
        ],
        input="s3cret\n",
        obj=obj,
    )
    assert r.exit_code == 0, r.output
    assert "alice" in r.output and "s3cret" not in r.output
    r = runner.invoke(
        app, ["add", "bob", "--project", "p2", "--role", "admin", "--password", "pw"], obj=obj
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["add", "carol", "--project", "p3", "--role", "reader"], input="pw3\npw3\n", obj=obj
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["list"], obj=obj)
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "ROLES"]
    assert [line.split() for line in lines[1:]] == [
        ["alice", "p1", "member,reader"],
        ["bob", "p2", "admin"],
        ["carol", "p3", "reader"],
    ]
    assert "scrypt" not in r.output
    db = Database(obj["settings"].database_url)  # type: ignore[attr-defined]
    try:
        with db.read() as s:
            assert verify_password("s3cret", s.get(m.User, "alice").password_hash)
            assert verify_password("pw3", s.get(m.User, "carol").password_hash)
    finally:
        db.dispose()
    r = runner.invoke(app, ["delete", "bob"], obj=obj)
    assert r.exit_code == 0
    r = runner.invoke(app, ["delete", "bob"], obj=obj)
    assert r.exit_code == 1
    assert "not found" in r.output


def test_command_errors(tmp_path: Path) -> None:
    app, obj = _cli(tmp_path)
    runner = CliRunner()
    r = runner.invoke(
        app, ["add", "dave", "--project", "p1", "--role", "root", "--password", "pw"], obj=obj
    )
    assert r.exit_code == 1
    assert "Unknown role" in r.output
    r = runner.invoke(
        app,
        [
            "add",
            "dave",
            "--project",
            "p1",
            "--role",
            "reader",
            "--password",
            "pw",
            "--password-stdin",
        ],
        input="x\n",
        obj=obj,
    )
    assert r.exit_code == 2
    r = runner.invoke(app, ["list"], obj=obj)
    assert r.output.strip() == "no users"
