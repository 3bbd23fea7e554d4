"""The tool-pins plugin's tables: one row per pinned tool, one per definition change
already announced, and the migrations that make them. Times are naive UTC."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from meshkit.migrations import Migrations

__all__ = ["MIGRATIONS", "DriftRow", "PinRow", "metadata"]


class _Table(SQLModel, registry=registry()):
    """Base of the plugin's tables: their own metadata, not sqlmodel's global one."""


class PinRow(_Table, table=True):
    """The approved definition of one tool."""

    __tablename__ = "tool_pins"

    server: str = Field(primary_key=True, max_length=31)
    tool: str = Field(primary_key=True, max_length=128)
    digest: str = Field(max_length=64)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    approved_by: str = Field(max_length=128)
    approve_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))


class DriftRow(_Table, table=True):
    """A definition of a tool that differs from its pin, once announced."""

    __tablename__ = "tool_pin_drifts"

    server: str = Field(primary_key=True, max_length=31)
    tool: str = Field(primary_key=True, max_length=128)
    digest: str = Field(primary_key=True, max_length=64)
    seen_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))


#: The plugin's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied at start (:meth:`meshkit.db.Database.attach`).
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_tool_pins", metadata)
