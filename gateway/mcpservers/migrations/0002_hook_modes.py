"""The modes admins set for tool-call hooks.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0002"
down_revision: str | None = "0001"


def upgrade(op: Operations) -> None:
    """Create the mcp_hook_modes table."""
    op.create_table(
        "mcp_hook_modes",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
