"""The upstream MCP servers, as the gateway first kept them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create the mcp_servers table."""
    op.create_table(
        "mcp_servers",
        sa.Column("name", sa.String(length=31), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("transport", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("secret_names", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("include_tools", sa.JSON(), nullable=False),
        sa.Column("exclude_tools", sa.JSON(), nullable=False),
        sa.Column("call_timeout_millis", sa.Integer(), nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
