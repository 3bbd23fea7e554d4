"""Machine users and their token hashes in the plugin's own database (the rows of
:mod:`services.machineusers.tables`).

A token is looked up by its display prefix, never by the token itself; the caller
compares hashes in constant time.

Every method works inside a session its caller opened, so a change and the outbox row of
its event share one transaction. The store speaks domain objects
(:mod:`services.machineusers.model`); it never sees protobuf.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import delete, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from meshkit.db import aware_utc, naive_utc
from meshkit.permissions import rules_to_json
from services.machineusers.model import MachineUser, MachineUserChanges
from services.machineusers.tables import MachineUserRow, TokenRow, machine_user_of
from services.machineusers.tokens import IssuedToken

__all__ = ["MachineUserStore", "StoredToken"]


@dataclass(frozen=True)
class StoredToken:
    """A stored token hash and the machine user it belongs to."""

    token_hash: str
    current: bool
    expire_time: dt.datetime | None
    machine_user: MachineUser

    def __repr__(self) -> str:
        return f"StoredToken(machine_user={self.machine_user.machine_user_id!r})"


class MachineUserStore:
    """Reads and writes machine users in the session it is given."""

    async def get(
        self, session: AsyncSession, machine_user_id: str, *, lock: bool = False
    ) -> MachineUser | None:
        """The machine user ``machine_user_id``, or None; ``lock`` holds its row until the
        transaction ends (PostgreSQL; SQLite's write transactions hold the whole file)."""
        query = (
            select(MachineUserRow)
            .where(MachineUserRow.machine_user_id == machine_user_id)
            # Read the row again even when the session holds it: an update or a rotation
            # in this transaction changed it behind the session's back.
            .execution_options(populate_existing=True)
        )
        if lock:
            query = query.with_for_update()
        row = (await session.scalars(query)).first()
        return await self._user(session, row) if row is not None else None

    async def name_taken(self, session: AsyncSession, name: str) -> bool:
        """Whether a machine user is called ``name``."""
        query = select(MachineUserRow.seq).where(MachineUserRow.name == name)
        return (await session.scalars(query)).first() is not None

    async def insert(
        self,
        session: AsyncSession,
        user: MachineUser,
        token: IssuedToken,
    ) -> MachineUser:
        """Add ``user`` (its ``seq`` is ignored) with ``token`` as its current token.

        Raises:
            sqlalchemy.exc.IntegrityError: The id or the name is taken.
        """
        row = MachineUserRow(
            machine_user_id=user.machine_user_id,
            name=user.name,
            description=user.description,
            role=user.role.value,
            admin=user.policy.admin,
            rules=rules_to_json(user.policy.rules),
            expire_time=naive_utc(user.expire_time),
            create_time=naive_utc(user.create_time),
            last_used_time=None,
            creator_id=user.creator_id,
        )
        session.add(row)
        await session.flush()
        assert row.seq is not None
        await self._add_token(session, row.seq, token, user.token.issue_time)
        return await self._user(session, row)

    async def rotate(
        self,
        session: AsyncSession,
        user: MachineUser,
        token: IssuedToken,
        now: dt.datetime,
        previous_expire_time: dt.datetime,
    ) -> MachineUser:
        """Make ``token`` the current token of ``user``.

        The current token works until ``previous_expire_time`` (deleted at once when
        that is ``now``); a token still in an earlier rotation's grace is deleted.
        """
        await session.execute(
            delete(TokenRow).where(
                col(TokenRow.machine_user_seq) == user.seq, col(TokenRow.current).is_(False)
            )
        )
        if previous_expire_time <= now:
            await session.execute(
                delete(TokenRow).where(col(TokenRow.machine_user_seq) == user.seq)
            )
        else:
            await session.execute(
                update(TokenRow)
                .where(col(TokenRow.machine_user_seq) == user.seq)
                .values(current=False, expire_time=naive_utc(previous_expire_time))
                .execution_options(synchronize_session=False)
            )
        await self._add_token(session, user.seq, token, now)
        await session.execute(
            update(MachineUserRow)
            .where(col(MachineUserRow.seq) == user.seq)
            .values(revision=col(MachineUserRow.revision) + 1)
            .execution_options(synchronize_session=False)
        )
        rotated = await self.get(session, user.machine_user_id)
        assert rotated is not None
        return rotated

    async def update(
        self, session: AsyncSession, user: MachineUser, changes: MachineUserChanges
    ) -> MachineUser | None:
        """Apply ``changes`` to ``user`` if it is still at the revision it was read at.

        Returns the machine user after the change, or None when its revision moved on.

        Raises:
            sqlalchemy.exc.IntegrityError: The new name is taken.
        """
        values: dict[str, Any] = {"revision": user.revision + 1}
        if changes.name is not None:
            values["name"] = changes.name
        if changes.description is not None:
            values["description"] = changes.description
        if changes.role is not None:
            values["role"] = changes.role.value
        if changes.policy is not None:
            values.update(admin=changes.policy.admin, rules=rules_to_json(changes.policy.rules))
        statement = (
            update(MachineUserRow)
            .where(
                col(MachineUserRow.seq) == user.seq,
                col(MachineUserRow.revision) == user.revision,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(await session.execute(statement)) != 1:
            return None
        return await self.get(session, user.machine_user_id)

    async def delete(self, session: AsyncSession, user: MachineUser) -> bool:
        """Delete ``user`` and every token of it; False when it was already gone."""
        await session.execute(delete(TokenRow).where(col(TokenRow.machine_user_seq) == user.seq))
        result = await session.execute(
            delete(MachineUserRow).where(col(MachineUserRow.seq) == user.seq)
        )
        return _rowcount(result) == 1

    async def tokens_with_prefix(self, session: AsyncSession, prefix: str) -> list[StoredToken]:
        """Every stored token whose display prefix is ``prefix``, with its machine user."""
        query = (
            select(TokenRow, MachineUserRow)
            .join(MachineUserRow, col(MachineUserRow.seq) == col(TokenRow.machine_user_seq))
            .where(TokenRow.prefix == prefix)
        )
        pairs = (await session.execute(query)).all()
        users = await self._load(session, [user_row for _, user_row in pairs])
        return [
            StoredToken(
                token_hash=token_row.token_hash,
                current=token_row.current,
                expire_time=aware_utc(token_row.expire_time),
                machine_user=user,
            )
            for (token_row, _), user in zip(pairs, users, strict=True)
        ]

    async def touch(
        self, session: AsyncSession, seq: int, now: dt.datetime, interval: dt.timedelta
    ) -> None:
        """Set the last-used time to ``now`` unless it was set less than ``interval`` ago."""
        when = naive_utc(now)
        statement = (
            update(MachineUserRow)
            .where(
                col(MachineUserRow.seq) == seq,
                col(MachineUserRow.last_used_time).is_(None)
                | (col(MachineUserRow.last_used_time) <= when - interval),
            )
            .values(last_used_time=when)
            .execution_options(synchronize_session=False)
        )
        await session.execute(statement)

    async def page(
        self, session: AsyncSession, *, before_seq: int | None, limit: int
    ) -> Sequence[MachineUser]:
        """Up to ``limit`` machine users, newest first, older than ``before_seq`` if given."""
        query = select(MachineUserRow)
        if before_seq is not None:
            query = query.where(col(MachineUserRow.seq) < before_seq)
        query = query.order_by(col(MachineUserRow.seq).desc()).limit(limit)
        return await self._load(session, (await session.scalars(query)).all())

    async def _add_token(
        self, session: AsyncSession, seq: int, token: IssuedToken, now: dt.datetime
    ) -> None:
        session.add(
            TokenRow(
                machine_user_seq=seq,
                prefix=token.prefix,
                token_hash=token.hash,
                last_four=token.last_four,
                current=True,
                issue_time=naive_utc(now),
                expire_time=None,
            )
        )
        await session.flush()

    async def _user(self, session: AsyncSession, row: MachineUserRow) -> MachineUser:
        (user,) = await self._load(session, [row])
        return user

    async def _load(
        self, session: AsyncSession, rows: Sequence[MachineUserRow]
    ) -> list[MachineUser]:
        """The machine users of ``rows`` with their token infos, in one more query."""
        seqs = [row.seq for row in rows]
        tokens: dict[int, list[TokenRow]] = {}
        if seqs:
            query = select(TokenRow).where(col(TokenRow.machine_user_seq).in_(seqs))
            for token in (await session.scalars(query)).all():
                tokens.setdefault(token.machine_user_seq, []).append(token)
        return [machine_user_of(row, tokens.get(row.seq or 0, [])) for row in rows]


def _rowcount(result: Result[Any]) -> int:
    # A DELETE returns a CursorResult; Session.execute is typed more loosely.
    return cast("CursorResult[Any]", result).rowcount
