"""Stored registrations, as the registry first created them.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import Operations

revision = "0001"
down_revision: str | None = None


def upgrade(op: Operations) -> None:
    """Create registry_services and registry_instances."""
    op.create_table(
        "registry_instances",
        sa.Column("instance_id", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("register_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.create_index(
        "ix_registry_instances_service", "registry_instances", ["service"], unique=False
    )
    op.create_table(
        "registry_services",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("grpc_services", sa.JSON(), nullable=False),
        sa.Column("produces", sa.JSON(), nullable=False),
        sa.Column("consumes", sa.JSON(), nullable=False),
        sa.Column("dependencies", sa.JSON(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("schema_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("schema_digest", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade(op: Operations) -> None:
    """Drop both tables."""
    op.drop_table("registry_services")
    op.drop_index("ix_registry_instances_service", table_name="registry_instances")
    op.drop_table("registry_instances")
