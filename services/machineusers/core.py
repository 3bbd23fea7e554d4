"""What the machine-users plugin does, whoever asks: create, read, update, delete, rotate,
validate, and decide a permission.

Rules kept here: names are unique; an update or a rotation bumps the revision (the
etag's version), an etag that does not match is ABORTED, and an update that changes
nothing changes and publishes nothing; a machine user's expiry is in the future and within
the configured maximum lifetime (one created without an expiry gets the maximum); a
token is returned once and stored only as a hash; each change publishes its event in
its own transaction (the outbox). Validation refuses a malformed token before touching
the database, compares hashes in constant time, enforces the machine user's expiry and
the rotated-out token's grace period, and writes the last-used time at most once per
configured interval per machine user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, invalid_field
from meshkit.identity import Identity
from meshkit.permissions import Decision, decide
from services.machineusers import tokens
from services.machineusers.model import (
    InvalidReason,
    MachineUser,
    MachineUserChanges,
    NewMachineUser,
    Rotation,
    TokenInfo,
    Validation,
)
from services.machineusers.store import MachineUserStore

__all__ = ["ChangeSink", "MachineUsers"]

log = logging.getLogger(__name__)


class ChangeSink(Protocol):
    """Records the events of a change in the transaction that makes it (the outbox)."""

    def created(self, session: AsyncSession, actor: Identity, user: MachineUser) -> None:
        """``user`` was created."""

    def updated(
        self, session: AsyncSession, actor: Identity, user: MachineUser, fields: Sequence[str]
    ) -> None:
        """``fields`` (API names) of ``user`` changed; ``user`` is the new state."""

    def deleted(self, session: AsyncSession, actor: Identity, user: MachineUser) -> None:
        """``user`` was deleted; it is its last state."""

    def token_rotated(
        self,
        session: AsyncSession,
        actor: Identity,
        user: MachineUser,
        previous_token_expire_time: dt.datetime,
    ) -> None:
        """``user`` got a new token; the previous one works until the time given."""


class MachineUsers:
    """The machine users of the mesh, in a database, with their events.

    Args:
        database: The plugin's database.
        sink: Where the events of changes go.
        max_lifetime: Longest lifetime of a machine user; None for no limit.
        last_used_interval: Least time between two writes of a last-used time.
        clock: Tells the time.
        store: The SQL behind it.
    """

    def __init__(
        self,
        database: Database,
        sink: ChangeSink,
        *,
        max_lifetime: dt.timedelta | None,
        last_used_interval: dt.timedelta,
        clock: Clock = SYSTEM_CLOCK,
        store: MachineUserStore | None = None,
    ) -> None:
        self._db = database
        self._sink = sink
        self._max_lifetime = max_lifetime
        self._last_used_interval = last_used_interval
        self._clock = clock
        self._store = store or MachineUserStore()
        # Per machine user (seq): when this process last wrote its last-used time.
        self._touched: dict[int, dt.datetime] = {}

    # --- reads ------------------------------------------------------------------------

    async def get(self, machine_user_id: str) -> MachineUser:
        """The machine user ``machine_user_id``.

        Raises:
            NotFound: There is none.
        """
        async with self._db.read() as session:
            user = await self._store.get(session, machine_user_id)
        if user is None:
            raise _not_found(machine_user_id)
        return user

    async def decide(self, machine_user_id: str, server: str, tool: str) -> Decision:
        """Whether the machine user ``machine_user_id`` may call ``tool`` on ``server``,
        by the toolkit's :func:`~meshkit.permissions.decide` on its stored permissions
        (what the gateway applies on ``tools/call``). Expiry is not looked at: an expired
        machine user's token is refused before any tool is.

        Raises:
            NotFound: There is none.
        """
        return decide((await self.get(machine_user_id)).policy, server, tool)

    async def page(
        self, *, before_seq: int | None, limit: int
    ) -> tuple[Sequence[MachineUser], bool]:
        """Up to ``limit`` machine users, newest first, and whether more follow."""
        async with self._db.read() as session:
            users = await self._store.page(session, before_seq=before_seq, limit=limit + 1)
        return users[:limit], len(users) > limit

    # --- changes ----------------------------------------------------------------------

    async def create(self, actor: Identity, new: NewMachineUser) -> tuple[MachineUser, str]:
        """Create a machine user and its first token; return both (the token only here).

        Raises:
            InvalidArgument: The expiry is in the past or beyond the maximum lifetime.
            AlreadyExists: The name is taken.
        """
        now = self._clock.now()
        issued = tokens.issue()
        draft = MachineUser(
            machine_user_id=str(uuid.uuid4()),
            name=new.name,
            description=new.description,
            role=new.role,
            policy=new.policy,
            expire_time=self._expiry(new, now),
            token=TokenInfo(prefix=issued.prefix, last_four=issued.last_four, issue_time=now),
            create_time=now,
            last_used_time=None,
            creator_id=actor.subject,
            seq=0,
        )
        try:
            async with self._db.transaction() as session:
                if await self._store.name_taken(session, new.name):
                    raise _name_taken(new.name)
                user = await self._store.insert(session, draft, issued)
                self._sink.created(session, actor, user)
        except IntegrityError:
            raise _name_taken(new.name) from None
        log.info(
            "machine user created",
            extra={"machine_user_id": user.machine_user_id, "token_prefix": issued.prefix},
        )
        return user, issued.token

    async def update(
        self,
        actor: Identity,
        machine_user_id: str,
        changes: MachineUserChanges,
        *,
        etag: str = "",
    ) -> MachineUser:
        """Change fields of a machine user; publish ``machine_user.updated`` when one
        changed. The token and the expiry are left as they are.

        Raises:
            NotFound: There is no such machine user.
            Aborted: ``etag`` is set and is not the machine user's, or a concurrent
                change won.
            AlreadyExists: The new name is another machine user's.
        """
        try:
            async with self._db.transaction() as session:
                user = await self._store.get(session, machine_user_id, lock=True)
                if user is None:
                    raise _not_found(machine_user_id)
                _check_etag(user, etag)
                fields = changes.changed_fields(user)
                if not fields:
                    return user
                taken = changes.name is not None and "name" in fields
                if taken and await self._store.name_taken(session, changes.name or ""):
                    raise _name_taken(changes.name or "")
                updated = await self._store.update(session, user, changes.only(fields))
                if updated is None:
                    raise Aborted(
                        f"machine user {machine_user_id!r} changed concurrently; retry the call",
                        reason="CONCURRENT_CHANGE",
                        metadata={"machine_user_id": machine_user_id},
                    )
                self._sink.updated(session, actor, updated, fields)
        except IntegrityError:
            # Only the name is unique among the fields an update writes.
            raise _name_taken(changes.name or "") from None
        log.info(
            "machine user updated",
            extra={"machine_user_id": machine_user_id, "fields": ",".join(fields)},
        )
        return updated

    async def delete(self, actor: Identity, machine_user_id: str, *, allow_missing: bool) -> None:
        """Delete a machine user and its tokens.

        Raises:
            NotFound: There is none and ``allow_missing`` is False.
        """
        async with self._db.transaction() as session:
            user = await self._store.get(session, machine_user_id, lock=True)
            if user is None:
                if allow_missing:
                    return
                raise _not_found(machine_user_id)
            await self._store.delete(session, user)
            self._sink.deleted(session, actor, user)
        self._touched.pop(user.seq, None)
        log.info("machine user deleted", extra={"machine_user_id": machine_user_id})

    async def rotate(
        self, actor: Identity, machine_user_id: str, *, grace: dt.timedelta | None
    ) -> Rotation:
        """Issue a new token; the current one keeps working for ``grace`` (or stops now).

        Raises:
            NotFound: There is no such machine user.
            FailedPrecondition: It has expired.
        """
        now = self._clock.now()
        issued = tokens.issue()
        previous_expire_time = now + grace if grace else now
        async with self._db.transaction() as session:
            user = await self._store.get(session, machine_user_id, lock=True)
            if user is None:
                raise _not_found(machine_user_id)
            if user.expired(now):
                raise FailedPrecondition(
                    f"machine user {machine_user_id!r} has expired; create a new one",
                    reason="MACHINE_USER_EXPIRED",
                    metadata={"machine_user_id": machine_user_id},
                )
            rotated = await self._store.rotate(session, user, issued, now, previous_expire_time)
            self._sink.token_rotated(session, actor, rotated, previous_expire_time)
        log.info(
            "machine user token rotated",
            extra={"machine_user_id": machine_user_id, "token_prefix": issued.prefix},
        )
        return Rotation(rotated, issued.token, previous_expire_time)

    # --- validation -------------------------------------------------------------------

    async def validate(self, token: str) -> Validation:
        """Say whether ``token`` is valid and whose it is; never raises for a bad token."""
        try:
            parsed = tokens.parse(token)
        except tokens.MalformedToken:
            return Validation(reason=InvalidReason.MALFORMED)  # no database lookup
        async with self._db.read() as session:
            candidates = await self._store.tokens_with_prefix(session, parsed.prefix)
        found = None
        for candidate in candidates:  # every one compared: no early exit on a match
            if tokens.hashes_match(candidate.token_hash, parsed.hash):
                found = candidate
        if found is None:
            return Validation(reason=InvalidReason.UNKNOWN)
        now = self._clock.now()
        user = found.machine_user
        if user.expired(now) or (found.expire_time is not None and found.expire_time <= now):
            return Validation(reason=InvalidReason.EXPIRED)
        ends = [t for t in (user.expire_time, found.expire_time) if t is not None]
        user = await self._touch(user, now)
        return Validation(machine_user=user, expire_time=min(ends) if ends else None)

    async def _touch(self, user: MachineUser, now: dt.datetime) -> MachineUser:
        """Record the use, at most once per interval per machine user (per process, and
        in the database across processes)."""
        last = self._touched.get(user.seq)
        if last is not None and now - last < self._last_used_interval:
            return user
        self._touched[user.seq] = now
        try:
            async with self._db.transaction() as session:
                await self._store.touch(session, user.seq, now, self._last_used_interval)
        except SQLAlchemyError as exc:
            # Bookkeeping: a valid token stays valid when it cannot be recorded.
            log.warning(
                "cannot record a machine user's last use: %s",
                exc,
                extra={"machine_user_id": user.machine_user_id},
            )
            return user
        return dataclasses.replace(user, last_used_time=now)

    def _expiry(self, new: NewMachineUser, now: dt.datetime) -> dt.datetime | None:
        limit = self._max_lifetime
        if new.expire_time is not None:
            field, expire_time = "machine_user.expire_time", new.expire_time
            if expire_time <= now:
                raise invalid_field(field, "must be in the future")
        elif new.ttl is not None:
            field = "machine_user.ttl"
            try:
                expire_time = now + new.ttl
            except OverflowError:  # a valid Duration (up to 10,000 years) past year 9999
                raise invalid_field(field, "is out of range") from None
        else:
            return None if limit is None else now + limit
        if limit is not None and expire_time - now > limit:
            seconds = int(limit.total_seconds())
            raise invalid_field(field, f"is beyond the maximum lifetime of {seconds} seconds")
        return expire_time


def _not_found(machine_user_id: str) -> NotFound:
    return NotFound(
        f"machine user {machine_user_id!r} does not exist",
        reason="MACHINE_USER_NOT_FOUND",
        metadata={"machine_user_id": machine_user_id},
    )


def _check_etag(user: MachineUser, etag: str) -> None:
    if etag and etag != user.etag:
        raise Aborted(
            f"machine user {user.machine_user_id!r} changed since etag {etag!r} was read "
            f"(now {user.etag!r})",
            reason="ETAG_MISMATCH",
            metadata={"machine_user_id": user.machine_user_id, "etag": user.etag},
        )


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"a machine user is already called {name!r}",
        reason="MACHINE_USER_NAME_TAKEN",
        metadata={"name": name},
    )
