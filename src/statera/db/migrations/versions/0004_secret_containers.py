"""secret containers (Barbican-shaped certificate and generic containers)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "secret_container",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("creator_id", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_container")),
    )
    with op.batch_alter_table("secret_container", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_container_project_id"), ["project_id"],
                              unique=False)
    op.create_table(
        "secret_container_ref",
        sa.Column("container_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["container_id"], ["secret_container.id"],
                                name=op.f("fk_secret_container_ref_container_id_secret_container"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("container_id", "name", name=op.f("pk_secret_container_ref")),
    )
    with op.batch_alter_table("secret_container_ref", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_container_ref_secret_id"), ["secret_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("secret_container_ref", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_container_ref_secret_id"))
    op.drop_table("secret_container_ref")
    with op.batch_alter_table("secret_container", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_container_project_id"))
    op.drop_table("secret_container")
