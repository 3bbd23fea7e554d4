"""The machine-users plugin's tables: sqlmodel rows with metadata of their own, the
migrations that make them, and how rows read as a machine user.

``machine_users`` holds one row per machine user, without any secret;
``machine_user_tokens`` the SHA-256 of each token that works: the current one and,
during a rotation's grace period, the previous one. Times are naive UTC
(:func:`meshkit.db.naive_utc`); ``rules`` is a JSON list of rule objects
(:func:`meshkit.permissions.rules_to_json`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from meshkit.db import aware_utc
from meshkit.migrations import Migrations
from meshkit.permissions import Policy, Role, rules_from_json
from services.machineusers.model import MachineUser, TokenInfo

__all__ = ["MIGRATIONS", "MachineUserRow", "TokenRow", "machine_user_of", "metadata"]


class _Table(SQLModel, registry=registry()):
    """Base of the plugin's tables: their own metadata, not sqlmodel's global one."""


class MachineUserRow(_Table, table=True):
    """One machine user. Times are naive UTC; ``rules`` is a JSON list of rule objects."""

    __tablename__ = "machine_users"
    # AUTOINCREMENT: a sequence number is never reused, so page tokens stay exact.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    machine_user_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=128, unique=True)
    description: str = Field(default="", max_length=1024)
    role: str = Field(max_length=16)
    admin: bool = False
    rules: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    expire_time: dt.datetime | None = Field(sa_column=Column(DateTime(), nullable=True))
    create_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))
    last_used_time: dt.datetime | None = Field(sa_column=Column(DateTime(), nullable=True))
    creator_id: str = Field(default="", max_length=256)
    # One more on every update and rotation: the etag's version, and the guard of an
    # update against a concurrent one (``WHERE revision = :read``).
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class TokenRow(_Table, table=True):
    """A token that works: its hash, never the token. ``expire_time`` is set on a
    rotated-out token during its grace period."""

    __tablename__ = "machine_user_tokens"

    id: int | None = Field(default=None, primary_key=True)
    machine_user_seq: int = Field(
        sa_column=Column(
            Integer, ForeignKey("machine_users.seq", ondelete="CASCADE"), nullable=False
        )
    )
    prefix: str = Field(max_length=16, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    last_four: str = Field(max_length=4)
    current: bool
    issue_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))
    expire_time: dt.datetime | None = Field(sa_column=Column(DateTime(), nullable=True))


#: The plugin's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied at start (:meth:`meshkit.db.Database.attach`).
MIGRATIONS = Migrations(
    Path(__file__).parent / "migrations", "alembic_version_machine_users", metadata
)


def machine_user_of(row: MachineUserRow, tokens: Sequence[TokenRow]) -> MachineUser:
    """The machine user a row stores, with its tokens' rows (current and in grace)."""
    assert row.seq is not None, "a stored row has its sequence number"
    current = next((t for t in tokens if t.current), None)
    previous = next((t for t in tokens if not t.current), None)
    create_time = aware_utc(row.create_time)
    info = TokenInfo(
        prefix=current.prefix if current else "",
        last_four=current.last_four if current else "",
        issue_time=aware_utc(current.issue_time) if current else create_time,
        previous_token_expire_time=aware_utc(previous.expire_time) if previous else None,
    )
    return MachineUser(
        machine_user_id=row.machine_user_id,
        name=row.name,
        description=row.description,
        role=Role(row.role),
        policy=Policy(admin=row.admin, rules=rules_from_json(row.rules)),
        expire_time=aware_utc(row.expire_time),
        token=info,
        create_time=create_time,
        last_used_time=aware_utc(row.last_used_time),
        creator_id=row.creator_id,
        seq=row.seq,
        revision=row.revision,
    )
