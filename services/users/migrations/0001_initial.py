"""The users table, as the plugin first created it.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create the users table and its indexes."""
    op.create_table(
        "users",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=False),
        sa.Column("last_login_time", sa.DateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("email_key"),
        sa.UniqueConstraint("user_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_users_role", "users", ["role"], unique=False)


def downgrade(op: Operations) -> None:
    """Drop the users table."""
    op.drop_index("ix_users_role", table_name="users")
    op.drop_table("users")
