"""A revision number per machine user, the version its etag is made of.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0002"
down_revision: str | None = "0001"


def upgrade(op: Operations) -> None:
    """Add machine_users.revision; existing machine users start at 1."""
    op.add_column(
        "machine_users",
        sa.Column("revision", sa.Integer(), nullable=False, server_default="1"),
    )


def downgrade(op: Operations) -> None:
    """Drop machine_users.revision."""
    with op.batch_alter_table("machine_users") as batch:
        batch.drop_column("revision")
