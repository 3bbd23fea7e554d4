"""The tool pins and the announced definition changes, as the plugin first kept them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create the tool_pins and tool_pin_drifts tables."""
    op.create_table(
        "tool_pins",
        sa.Column("server", sa.String(length=31), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=False),
        sa.Column("approve_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server", "tool"),
    )
    op.create_table(
        "tool_pin_drifts",
        sa.Column("server", sa.String(length=31), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("seen_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server", "tool", "digest"),
    )
