"""The audit chain and its head, as the plugin first created them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None

_INDEXES = {
    "ix_audit_entries_action_sequence": ["action", "sequence"],
    "ix_audit_entries_actor_sequence": ["actor_id", "sequence"],
    "ix_audit_entries_occur_time": ["occur_time"],
    "ix_audit_entries_record_time": ["record_time"],
    "ix_audit_entries_resource_sequence": ["resource", "sequence"],
}


def upgrade(op: Operations) -> None:
    """Create audit_chain and audit_entries with its indexes."""
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head_sequence", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_sequence", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.String(), nullable=False),
        sa.Column("occur_time", sa.DateTime(), nullable=False),
        sa.Column("record_time", sa.DateTime(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(), nullable=False),
        sa.Column("actor_display_name", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("resource", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("ip_address", sa.String(), nullable=False),
        sa.Column("user_agent", sa.String(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
        sa.UniqueConstraint("entry_id"),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "audit_entries", columns, unique=False)


def downgrade(op: Operations) -> None:
    """Drop both tables."""
    for name in _INDEXES:
        op.drop_index(name, table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("audit_chain")
