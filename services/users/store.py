"""Users in the plugin's own database (the rows of :mod:`services.users.tables`).

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
from typing import Any, cast

from sqlalchemy import delete, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from meshkit.db import naive_utc
from meshkit.permissions import Role, rules_to_json
from services.users.model import NewUser, User, UserChanges, email_key
from services.users.tables import UserRow, user_of

__all__ = ["UserStore"]


class UserStore:
    """Reads and writes users in the session it is given."""

    async def get(self, session: AsyncSession, user_id: str, *, lock: bool = False) -> User | None:
        """The user ``user_id``, or None; ``lock`` holds its row until the transaction ends."""
        query = select(UserRow).where(UserRow.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = (await session.scalars(query)).first()
        return user_of(row) if row is not None else None

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
            create_time=naive_utc(now),
            update_time=naive_utc(now),
            last_login_time=naive_utc(new.last_login_time),
            revision=1,
        )
        session.add(row)
        await session.flush()
        return user_of(row)

    async def update(
        self, session: AsyncSession, user: User, changes: UserChanges, now: dt.datetime
    ) -> User | None:
        """Apply ``changes`` to ``user`` if it is still at the revision it was read at.

        Returns the user after the change, or None when its revision moved on.
        """
        values: dict[str, Any] = {"update_time": naive_utc(now), "revision": user.revision + 1}
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
        when = naive_utc(time)
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
        return [user_of(row) for row in (await session.scalars(query)).all()]


def _rowcount(result: Result[Any]) -> int:
    # An UPDATE or DELETE returns a CursorResult; Session.execute is typed more loosely.
    return cast("CursorResult[Any]", result).rowcount
