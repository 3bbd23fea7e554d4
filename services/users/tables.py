"""The users plugin's tables: sqlmodel rows with metadata of their own, the migrations
that make them, and how a row reads as a user.

Times are naive UTC (:func:`meshkit.db.naive_utc`); ``rules`` is a JSON list of rule
objects (:func:`meshkit.permissions.rules_to_json`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import JSON, Column, DateTime, MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from meshkit.db import aware_utc
from meshkit.migrations import Migrations
from meshkit.permissions import Policy, Role, rules_from_json
from services.users.model import User

__all__ = ["MIGRATIONS", "UserRow", "metadata", "user_of"]


class _Table(SQLModel, registry=registry()):
    """Base of the plugin's tables: their own metadata, not sqlmodel's global one."""


class UserRow(_Table, table=True):
    """One user."""

    __tablename__ = "users"
    # AUTOINCREMENT: a sequence number is never reused, even after the newest user is
    # deleted, so page tokens and etags never point at a different user.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=128, unique=True)
    email: str = Field(default="", max_length=320)
    # Lower-cased email, NULL when there is none: the unique index makes emails unique
    # case-insensitively while any number of users may have none.
    email_key: str | None = Field(default=None, max_length=320, unique=True)
    display_name: str = Field(default="", max_length=256)
    role: str = Field(max_length=16, index=True)
    admin: bool = False
    rules: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    create_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))
    update_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))
    last_login_time: dt.datetime | None = Field(sa_column=Column(DateTime(), nullable=True))
    revision: int


#: The plugin's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied at start (:meth:`meshkit.db.Database.attach`).
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_users", metadata)


def user_of(row: UserRow) -> User:
    """The user a row stores."""
    assert row.seq is not None, "a stored row has its sequence number"
    return User(
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        policy=Policy(admin=row.admin, rules=rules_from_json(row.rules)),
        create_time=aware_utc(row.create_time),
        update_time=aware_utc(row.update_time),
        last_login_time=aware_utc(row.last_login_time),
        revision=row.revision,
        seq=row.seq,
    )
