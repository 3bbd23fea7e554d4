"""Users in the plugin's own database (sqlmodel tables on :class:`meshkit.db.Database`).

Every method works inside a session its caller opened, so a change, the last-admin
check and the outbox row of its event share one transaction. The store speaks domain
objects (:mod:`services.users.model`); it never sees protobuf.

Concurrency. On SQLite every write transaction holds the database's write lock from its
``BEGIN IMMEDIATE``, so a read-check-write inside one is atomic. On PostgreSQL the rows a
write depends on are locked with ``SELECT … FOR UPDATE`` (:meth:`UserStore.get` with
``lock=True``, :meth:`UserStore.lock_admins`), and every update or delete also compares
the revision it read (``WHERE revision = :read``), so a lost race is seen, never a lost
write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import JSON, Column, DateTime, MetaData, delete, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col, select

from meshkit.migrations import Migrations
from services.users.model import NewUser, Role, User, UserChanges, email_key
from services.users.permissions import Policy, rules_from_json, rules_to_json

__all__ = ["MIGRATIONS", "UserRow", "UserStore", "metadata", "utcnow"]


class _Table(SQLModel, registry=registry()):
    """Base of the plugin's tables: their own metadata, not sqlmodel's global one."""


class UserRow(_Table, table=True):
    """One user. Times are naive UTC; ``rules`` is a JSON list of rule objects."""

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

#: The revisions that make them, applied at start.
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_users", metadata)


def utcnow() -> dt.datetime:
    """Now in UTC, aware, to the microsecond."""
    return dt.datetime.now(dt.UTC)


class UserStore:
    """Reads and writes users in the session it is given."""

    async def get(self, session: AsyncSession, user_id: str, *, lock: bool = False) -> User | None:
        """The user ``user_id``, or None; ``lock`` holds its row until the transaction ends."""
        query = select(UserRow).where(UserRow.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = (await session.scalars(query)).first()
        return _user(row) if row is not None else None

    async def owner_of_email(self, session: AsyncSession, email: str) -> str | None:
        """The id of the user whose email equals ``email`` case-insensitively, if any."""
        key = email_key(email)
        if key is None:
            return None
        query = select(UserRow.user_id).where(UserRow.email_key == key)
        return (await session.scalars(query)).first()

    async def lock_admins(self, session: AsyncSession) -> list[str]:
        """The ids of every ROLE_ADMIN user, their rows locked, in id order.

        Taken before the row being changed, always in the same order, so two transactions
        that could each remove an admin queue up instead of deadlocking.
        """
        query = (
            select(UserRow.user_id)
            .where(UserRow.role == Role.ADMIN.value)
            .order_by(col(UserRow.user_id))
            .with_for_update()
        )
        return list((await session.scalars(query)).all())

    async def insert(self, session: AsyncSession, new: NewUser, now: dt.datetime) -> User:
        """Add a user at revision 1.

        Raises:
            sqlalchemy.exc.IntegrityError: The id or the email is taken (a race the
                caller's own checks could not see).
        """
        row = UserRow(
            user_id=new.user_id,
            email=new.email,
            email_key=email_key(new.email),
            display_name=new.display_name,
            role=new.role.value,
            admin=new.policy.admin,
            rules=rules_to_json(new.policy.rules),
            create_time=_naive(now),
            update_time=_naive(now),
            last_login_time=_naive(new.last_login_time) if new.last_login_time else None,
            revision=1,
        )
        session.add(row)
        await session.flush()
        return _user(row)

    async def update(
        self, session: AsyncSession, user: User, changes: UserChanges, now: dt.datetime
    ) -> User | None:
        """Apply ``changes`` to ``user`` if it is still at the revision it was read at.

        Returns the user after the change, or None when its revision moved on.
        """
        values: dict[str, Any] = {"update_time": _naive(now), "revision": user.revision + 1}
        if changes.email is not None:
            values.update(email=changes.email, email_key=email_key(changes.email))
        if changes.display_name is not None:
            values["display_name"] = changes.display_name
        if changes.role is not None:
            values["role"] = changes.role.value
        if changes.policy is not None:
            values.update(admin=changes.policy.admin, rules=rules_to_json(changes.policy.rules))
        statement = (
            update(UserRow)
            .where(col(UserRow.seq) == user.seq, col(UserRow.revision) == user.revision)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = await session.execute(statement)
        if _rowcount(result) != 1:
            return None
        return await self.get(session, user.user_id)

    async def record_login(self, session: AsyncSession, user_id: str, time: dt.datetime) -> None:
        """Set the last login time, unless a later login was already recorded.

        A login is not a change of the user: revision and update time stay.
        """
        when = _naive(time)
        statement = (
            update(UserRow)
            .where(
                col(UserRow.user_id) == user_id,
                (col(UserRow.last_login_time).is_(None)) | (col(UserRow.last_login_time) < when),
            )
            .values(last_login_time=when)
            .execution_options(synchronize_session=False)
        )
        await session.execute(statement)

    async def delete(self, session: AsyncSession, user: User) -> bool:
        """Delete ``user`` if it is still at the revision it was read at."""
        statement = delete(UserRow).where(
            col(UserRow.seq) == user.seq, col(UserRow.revision) == user.revision
        )
        return _rowcount(await session.execute(statement)) == 1

    async def page(
        self,
        session: AsyncSession,
        *,
        role: Role | None,
        email: str | None,
        before_seq: int | None,
        limit: int,
    ) -> Sequence[User]:
        """Up to ``limit`` users, newest first, older than ``before_seq`` when given."""
        query = select(UserRow)
        if role is not None:
            query = query.where(UserRow.role == role.value)
        if email is not None:
            query = query.where(UserRow.email_key == email_key(email))
        if before_seq is not None:
            query = query.where(col(UserRow.seq) < before_seq)
        query = query.order_by(col(UserRow.seq).desc()).limit(limit)
        return [_user(row) for row in (await session.scalars(query)).all()]


def _user(row: UserRow) -> User:
    assert row.seq is not None, "a stored row has its sequence number"
    return User(
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        policy=Policy(admin=row.admin, rules=rules_from_json(row.rules)),
        create_time=_aware(row.create_time),
        update_time=_aware(row.update_time),
        last_login_time=_aware(row.last_login_time) if row.last_login_time else None,
        revision=row.revision,
        seq=row.seq,
    )


def _naive(time: dt.datetime) -> dt.datetime:
    return time.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(time: dt.datetime) -> dt.datetime:
    return time.replace(tzinfo=dt.UTC)


def _rowcount(result: Result[Any]) -> int:
    # An UPDATE or DELETE returns a CursorResult; Session.execute is typed more loosely.
    return cast("CursorResult[Any]", result).rowcount
