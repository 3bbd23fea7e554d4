"""Machine users and their token hashes in the plugin's own database.

Two tables: ``machine_users`` (one row per machine user, no secret) and
``machine_user_tokens`` (the SHA-256 of each token that works: the current one and,
during a rotation's grace period, the previous one). A token is looked up by its
display prefix, never by the token itself; the caller compares hashes in constant time.

Every method works inside a session its caller opened, so a change and the outbox row of
its event share one transaction. The store speaks domain objects
(:mod:`services.machineusers.model`); it never sees protobuf.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, overload

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, MetaData, delete, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col, select

from meshkit.migrations import Migrations
from services.machineusers.model import MachineUser, TokenInfo
from services.machineusers.tokens import IssuedToken
from services.users.model import Role
from services.users.permissions import Policy, rules_from_json, rules_to_json

__all__ = ["MachineUserRow", "MachineUserStore", "StoredToken", "TokenRow", "metadata"]


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

#: The revisions that make them, applied at start.
MIGRATIONS = Migrations(
    Path(__file__).parent / "migrations", "alembic_version_machine_users", metadata
)


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
        query = select(MachineUserRow).where(MachineUserRow.machine_user_id == machine_user_id)
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
            expire_time=_naive(user.expire_time),
            create_time=_naive(user.create_time),
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
                .values(current=False, expire_time=_naive(previous_expire_time))
                .execution_options(synchronize_session=False)
            )
        await self._add_token(session, user.seq, token, now)
        rotated = await self.get(session, user.machine_user_id)
        assert rotated is not None
        return rotated

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
                expire_time=_aware(token_row.expire_time),
                machine_user=user,
            )
            for (token_row, _), user in zip(pairs, users, strict=True)
        ]

    async def touch(
        self, session: AsyncSession, seq: int, now: dt.datetime, interval: dt.timedelta
    ) -> None:
        """Set the last-used time to ``now`` unless it was set less than ``interval`` ago."""
        when = _naive(now)
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
                issue_time=_naive(now),
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
        return [_machine_user(row, tokens.get(row.seq or 0, [])) for row in rows]


def _machine_user(row: MachineUserRow, tokens: Sequence[TokenRow]) -> MachineUser:
    assert row.seq is not None, "a stored row has its sequence number"
    current = next((t for t in tokens if t.current), None)
    previous = next((t for t in tokens if not t.current), None)
    create_time = _aware_required(row.create_time)
    info = TokenInfo(
        prefix=current.prefix if current else "",
        last_four=current.last_four if current else "",
        issue_time=_aware_required(current.issue_time) if current else create_time,
        previous_token_expire_time=_aware(previous.expire_time) if previous else None,
    )
    return MachineUser(
        machine_user_id=row.machine_user_id,
        name=row.name,
        description=row.description,
        role=Role(row.role),
        policy=Policy(admin=row.admin, rules=rules_from_json(row.rules)),
        expire_time=_aware(row.expire_time),
        token=info,
        create_time=create_time,
        last_used_time=_aware(row.last_used_time),
        creator_id=row.creator_id,
        seq=row.seq,
    )


@overload
def _naive(time: dt.datetime) -> dt.datetime: ...
@overload
def _naive(time: None) -> None: ...
@overload
def _naive(time: dt.datetime | None) -> dt.datetime | None: ...
def _naive(time: dt.datetime | None) -> dt.datetime | None:
    return None if time is None else time.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(time: dt.datetime | None) -> dt.datetime | None:
    return None if time is None else time.replace(tzinfo=dt.UTC)


def _aware_required(time: dt.datetime) -> dt.datetime:
    return time.replace(tzinfo=dt.UTC)


def _rowcount(result: Result[Any]) -> int:
    # A DELETE returns a CursorResult; Session.execute is typed more loosely.
    return cast("CursorResult[Any]", result).rowcount
