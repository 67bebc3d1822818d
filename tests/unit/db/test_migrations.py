"""Migrations: the head constant matches the scripts, and the migrated schema matches the
models on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from statera.db.database import make_engine
from statera.db.migrate import HEAD_REVISION, current_revision, is_current, script_head, upgrade
from statera.db.models import Base


def test_head_constant_matches_the_scripts() -> None:
    assert script_head() == HEAD_REVISION


def test_upgrade_builds_the_models_schema(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert is_current(db_url)
    upgrade(db_url)  # a second run is a no-op
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
