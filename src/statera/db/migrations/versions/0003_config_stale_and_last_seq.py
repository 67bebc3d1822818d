"""amphora.config_stale and amphora_health.last_seq

``config_stale``: a config push skipped this amphora (it was FAILOVER_STOPPED), so it is
re-pushed once heartbeats bring it back. ``last_seq``: the highest heartbeat sequence number
accepted from the amphora, so the replay guard survives a health-manager restart and holds
across several health managers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("amphora") as batch:
        batch.add_column(sa.Column("config_stale", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("amphora_health") as batch:
        batch.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("amphora_health") as batch:
        batch.drop_column("last_seq")
    with op.batch_alter_table("amphora") as batch:
        batch.drop_column("config_stale")
