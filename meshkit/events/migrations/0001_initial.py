"""The outbox and the inbox, as the event bus first created them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create plugmesh_outbox and plugmesh_inbox with their indexes."""
    op.create_table(
        "plugmesh_inbox",
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_index(
        "ix_plugmesh_inbox_processed_at", "plugmesh_inbox", ["processed_at"], unique=False
    )
    op.create_table(
        "plugmesh_outbox",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("nats_subject", sa.String(length=255), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.Column("tracestate", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("stream_sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        "ix_plugmesh_outbox_sent_at_event_id",
        "plugmesh_outbox",
        ["sent_at", "event_id"],
        unique=False,
    )


def downgrade(op: Operations) -> None:
    """Drop both tables."""
    op.drop_index("ix_plugmesh_outbox_sent_at_event_id", table_name="plugmesh_outbox")
    op.drop_table("plugmesh_outbox")
    op.drop_index("ix_plugmesh_inbox_processed_at", table_name="plugmesh_inbox")
    op.drop_table("plugmesh_inbox")
