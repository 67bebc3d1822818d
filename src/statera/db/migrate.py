"""Schema migrations with Alembic, driven from code (no alembic.ini needed).

Alembic itself is imported only when the schema needs work: a start on a current database
reads one row and goes on, which keeps `statera up` quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from statera.db.database import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions; a unit test keeps the two in step.
HEAD_REVISION = "0004"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(url: str) -> str | None:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def head_revision() -> str:
    return HEAD_REVISION


def is_current(url: str) -> bool:
    return current_revision(url) == HEAD_REVISION


def upgrade(url: str, revision: str = "head") -> None:
    if revision == "head" and is_current(url):
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def script_head() -> str | None:
    """The head according to Alembic's scripts (used by tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
