"""What the users plugin does, whoever asks: the API (:mod:`services.users.service`) or an
auth event (:mod:`services.users.events`).

Rules kept here: user ids and emails are unique (emails case-insensitively); a change
bumps the revision by one and publishes its events in the same transaction (an update
that changes nothing changes and publishes nothing); an etag that does not match is
ABORTED; and at least one ROLE_ADMIN user remains once there was one, even when two
admins are demoted at the same moment (see :mod:`services.users.store` for how).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound
from meshkit.identity import Identity
from meshkit.permissions import DEFAULT_POLICY, Decision, Policy, Role, decide
from services.users.model import SERVICE_ACTOR, NewUser, User, UserChanges
from services.users.store import UserStore

__all__ = ["ChangeSink", "Login", "Users"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A write that lost a race (revision moved, or a unique index caught a concurrent
# insert) runs again from the start this many times before the caller gets ABORTED.
_ATTEMPTS = 4


class ChangeSink(Protocol):
    """Records the events of a change in the transaction that makes it (the outbox)."""

    def created(self, session: AsyncSession, actor: Identity, user: User) -> None:
        """``user`` was created."""

    def updated(
        self, session: AsyncSession, actor: Identity, user: User, fields: Sequence[str]
    ) -> None:
        """``fields`` of ``user`` changed; ``user`` is the new state."""

    def deleted(self, session: AsyncSession, actor: Identity, user: User) -> None:
        """``user`` was deleted; it is the last state."""

    def permissions_updated(
        self, session: AsyncSession, actor: Identity, user: User, previous: Policy
    ) -> None:
        """``user``'s permissions were replaced; ``previous`` were the old ones."""


@dataclass(frozen=True)
class Login:
    """A user seen by the identity provider (``auth.login`` or ``auth.user.created``)."""

    user_id: str
    email: str
    display_name: str


class _LostRace(Exception):
    """The row changed between reading and writing it; the transaction is retried."""


class Users:
    """The users of the mesh, in a database, with their events.

    Args:
        database: The plugin's database.
        sink: Where the events of changes go.
        clock: Tells the time of changes.
        store: The SQL behind it.
    """

    def __init__(
        self,
        database: Database,
        sink: ChangeSink,
        *,
        clock: Clock = SYSTEM_CLOCK,
        store: UserStore | None = None,
    ) -> None:
        self._db = database
        self._sink = sink
        self._clock = clock
        self._store = store or UserStore()

    # --- reads ------------------------------------------------------------------------

    async def find(self, user_id: str) -> User | None:
        """The user ``user_id``, or None."""
        async with self._db.read() as session:
            return await self._store.get(session, user_id)

    async def get(self, user_id: str) -> User:
        """The user ``user_id``.

        Raises:
            NotFound: There is no such user.
        """
        user = await self.find(user_id)
        if user is None:
            raise _not_found(user_id)
        return user

    async def decide(self, user_id: str, server: str, tool: str) -> tuple[Decision, int]:
        """Whether the user ``user_id`` may call ``tool`` on ``server``, and the revision
        of the permissions that decided.

        Raises:
            NotFound: There is no such user.
        """
        user = await self.get(user_id)
        return decide(user.policy, server, tool), user.revision

    async def page(
        self, *, role: Role | None, email: str | None, before_seq: int | None, limit: int
    ) -> tuple[Sequence[User], bool]:
        """Up to ``limit`` users, newest first, and whether more follow."""
        async with self._db.read() as session:
            users = await self._store.page(
                session, role=role, email=email, before_seq=before_seq, limit=limit + 1
            )
        return users[:limit], len(users) > limit

    # --- writes from the API ----------------------------------------------------------

    async def create(self, actor: Identity, new: NewUser) -> User:
        """Create a user (with a new id when ``new`` has none) and publish ``user.created``.

        Raises:
            AlreadyExists: The id or the email is taken.
        """
        if not new.user_id:
            new = dataclasses.replace(new, user_id=str(uuid.uuid4()))

        async def create(session: AsyncSession) -> User:
            if await self._store.get(session, new.user_id) is not None:
                raise AlreadyExists(
                    f"user {new.user_id!r} already exists",
                    reason="USER_EXISTS",
                    metadata={"user_id": new.user_id},
                )
            await self._ensure_email_free(session, new.email, new.user_id)
            user = await self._store.insert(session, new, self._clock.now())
            self._sink.created(session, actor, user)
            return user

        return await self._write(create)

    async def update(
        self, actor: Identity, user_id: str, changes: UserChanges, *, etag: str = ""
    ) -> User:
        """Change fields of a user; publish ``user.updated`` (and
        ``user.permissions.updated`` when the permissions changed).

        Raises:
            NotFound: There is no such user.
            Aborted: ``etag`` is set and is not the user's.
            AlreadyExists: The new email belongs to another user.
            FailedPrecondition: The change would demote the last admin.
        """

        async def update(session: AsyncSession) -> User:
            demoting = changes.role is not None and changes.role is not Role.ADMIN
            admins = await self._store.lock_admins(session) if demoting else []
            user = await self._current(session, user_id, etag)
            fields = changes.changed_fields(user)
            if not fields:
                return user
            if "role" in fields and user.role is Role.ADMIN:
                _ensure_not_last_admin(user, admins, "demoted")
            if "email" in fields and changes.email:
                await self._ensure_email_free(session, changes.email, user_id)
            updated = await self._store.update(
                session, user, changes.only(fields), self._clock.now()
            )
            if updated is None:
                raise _LostRace(user_id)
            self._sink.updated(session, actor, updated, fields)
            if "permissions" in fields:
                self._sink.permissions_updated(session, actor, updated, user.policy)
            return updated

        return await self._write(update)

    async def set_permissions(
        self, actor: Identity, user_id: str, policy: Policy, *, etag: str = ""
    ) -> User:
        """Replace a user's permissions; publish ``user.permissions.updated`` if they changed.

        Raises:
            NotFound: There is no such user.
            Aborted: ``etag`` is set and is not the user's.
        """

        async def replace(session: AsyncSession) -> User:
            user = await self._current(session, user_id, etag)
            if user.policy == policy:
                return user
            updated = await self._store.update(
                session, user, UserChanges(policy=policy), self._clock.now()
            )
            if updated is None:
                raise _LostRace(user_id)
            self._sink.permissions_updated(session, actor, updated, user.policy)
            return updated

        return await self._write(replace)

    async def delete(
        self, actor: Identity, user_id: str, *, etag: str = "", allow_missing: bool = False
    ) -> None:
        """Delete a user and publish ``user.deleted``.

        Raises:
            NotFound: There is no such user and ``allow_missing`` is false.
            Aborted: ``etag`` is set and is not the user's.
            FailedPrecondition: The user is the last admin.
        """

        async def delete(session: AsyncSession) -> None:
            admins = await self._store.lock_admins(session)
            user = await self._store.get(session, user_id, lock=True)
            if user is None:
                if allow_missing:
                    return
                raise _not_found(user_id)
            _check_etag(user, etag)
            if user.role is Role.ADMIN:
                _ensure_not_last_admin(user, admins, "deleted")
            if not await self._store.delete(session, user):
                raise _LostRace(user_id)
            self._sink.deleted(session, actor, user)

        await self._write(delete)

    # --- writes from auth events, in the event handler's transaction -------------------

    async def provision(
        self, session: AsyncSession, login: Login, *, login_time: dt.datetime | None
    ) -> User | None:
        """Make sure the user of ``login`` exists, with the default permissions.

        Creates the user (publishing ``user.created`` with this service as the actor)
        when missing; with ``login_time``, records the login too. An email that another
        user already has is left out rather than failing the event forever.
        Returns the user created, or None when it existed.
        """
        existing = await self._store.get(session, login.user_id, lock=True)
        if existing is not None:
            if login_time is not None:
                await self._store.record_login(session, login.user_id, login_time)
            return None
        email = login.email
        owner = await self._store.owner_of_email(session, email) if email else None
        if owner is not None:
            log.warning(
                "provisioned user left without email: another user has it",
                extra={"user_id": login.user_id, "email_owner": owner},
            )
            email = ""
        new = NewUser(
            user_id=login.user_id,
            email=email,
            display_name=login.display_name,
            policy=DEFAULT_POLICY,
            last_login_time=login_time,
        )
        user = await self._store.insert(session, new, self._clock.now())
        self._sink.created(session, SERVICE_ACTOR, user)
        return user

    # --- helpers ----------------------------------------------------------------------

    async def _write(self, operation: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._db.transaction() as session:
                    return await operation(session)
            except (_LostRace, IntegrityError) as exc:
                if attempt == _ATTEMPTS:
                    raise Aborted(
                        "the user changed concurrently; retry the call", reason="CONCURRENT_CHANGE"
                    ) from exc
                log.debug("a write lost a race; retrying", extra={"attempt": attempt})
        raise AssertionError("unreachable")  # pragma: no cover

    async def _current(self, session: AsyncSession, user_id: str, etag: str) -> User:
        user = await self._store.get(session, user_id, lock=True)
        if user is None:
            raise _not_found(user_id)
        _check_etag(user, etag)
        return user

    async def _ensure_email_free(self, session: AsyncSession, email: str, user_id: str) -> None:
        if not email:
            return
        owner = await self._store.owner_of_email(session, email)
        if owner is not None and owner != user_id:
            raise AlreadyExists(
                f"email {email!r} belongs to another user",
                reason="EMAIL_TAKEN",
                metadata={"field": "email", "email": email},
            )


def _not_found(user_id: str) -> NotFound:
    return NotFound(
        f"user {user_id!r} does not exist", reason="USER_NOT_FOUND", metadata={"user_id": user_id}
    )


def _check_etag(user: User, etag: str) -> None:
    if etag and etag != user.etag:
        raise Aborted(
            f"user {user.user_id!r} changed since etag {etag!r} was read (now {user.etag!r})",
            reason="ETAG_MISMATCH",
            metadata={"user_id": user.user_id, "etag": user.etag},
        )


def _ensure_not_last_admin(user: User, admins: Sequence[str], what: str) -> None:
    if not any(admin != user.user_id for admin in admins):
        raise FailedPrecondition(
            f"user {user.user_id!r} is the last ROLE_ADMIN user and cannot be {what}; "
            "make another user an admin first",
            reason="LAST_ADMIN",
            metadata={"user_id": user.user_id},
        )
