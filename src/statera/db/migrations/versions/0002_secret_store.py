"""tenant secret store

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Blob = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "secret",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("creator_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("secret_type", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=255), nullable=True),
        sa.Column("bit_length", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=255), nullable=True),
        sa.Column("expiration", DateTime, nullable=True),
        sa.Column("payload", Blob, nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret")),
    )
    with op.batch_alter_table("secret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("secret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_project_id"))
    op.drop_table("secret")
