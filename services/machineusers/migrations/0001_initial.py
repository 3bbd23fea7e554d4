"""Machine users and their token hashes, as the plugin first created them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create the machine_users and machine_user_tokens tables and their indexes."""
    op.create_table(
        "machine_users",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("machine_user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("expire_time", sa.DateTime(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("last_used_time", sa.DateTime(), nullable=True),
        sa.Column("creator_id", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("machine_user_id"),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "machine_user_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_user_seq", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("last_four", sa.String(length=4), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("issue_time", sa.DateTime(), nullable=False),
        sa.Column("expire_time", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["machine_user_seq"], ["machine_users.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(
        "ix_machine_user_tokens_prefix", "machine_user_tokens", ["prefix"], unique=False
    )


def downgrade(op: Operations) -> None:
    """Drop both tables."""
    op.drop_index("ix_machine_user_tokens_prefix", table_name="machine_user_tokens")
    op.drop_table("machine_user_tokens")
    op.drop_table("machine_users")
