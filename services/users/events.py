"""The users plugin on the event bus: the ``user.*`` events it publishes and the ``auth.*``
events it consumes.

Out: :class:`OutboxSink` turns each change :class:`~services.users.core.Users` makes into
its payload and writes it to the outbox in the change's own transaction.

In: ``auth.login`` makes sure the user exists (with the default permissions) and records
the login time; ``auth.user.created`` makes sure the user exists. Both are idempotent:
the bus's inbox skips an event id it has handled, and a second event for a user who
exists creates nothing (a later login only moves ``last_login_time`` forward).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

from google.protobuf import field_mask_pb2, message
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.errors import InvalidArgument
from meshkit.events import EnvelopeError, ReceivedEvent
from meshkit.events.bus import Publisher, Subscriber
from meshkit.identity import Identity, event_actor
from meshkit.permissions import Policy
from meshkit.permissions.convert import policy_to_proto
from plugmesh.events.v1 import auth_events_pb2, user_events_pb2
from services.users.convert import user_to_proto, valid_email, valid_user_id
from services.users.core import Login, Users
from services.users.model import MAX_DISPLAY_NAME_LENGTH, User

__all__ = ["AuthHandlers", "OutboxSink", "subscribe"]

log = logging.getLogger(__name__)

_M = TypeVar("_M", bound=message.Message)

LOGIN = "auth.login"
USER_CREATED = "auth.user.created"


class OutboxSink:
    """Publishes ``user.*`` events via the outbox (a :class:`~services.users.core.ChangeSink`)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def created(self, session: AsyncSession, actor: Identity, user: User) -> None:
        """Publish ``user.created``."""
        payload = user_events_pb2.UserCreated(actor=event_actor(actor), user=user_to_proto(user))
        self._publisher.publish(session, payload, subject=_subject(user.user_id))

    def updated(
        self, session: AsyncSession, actor: Identity, user: User, fields: Sequence[str]
    ) -> None:
        """Publish ``user.updated`` naming the fields that changed."""
        payload = user_events_pb2.UserUpdated(
            actor=event_actor(actor),
            user=user_to_proto(user),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        )
        self._publisher.publish(session, payload, subject=_subject(user.user_id))

    def deleted(self, session: AsyncSession, actor: Identity, user: User) -> None:
        """Publish ``user.deleted`` with the user's last state."""
        payload = user_events_pb2.UserDeleted(actor=event_actor(actor), user=user_to_proto(user))
        self._publisher.publish(session, payload, subject=_subject(user.user_id))

    def permissions_updated(
        self, session: AsyncSession, actor: Identity, user: User, previous: Policy
    ) -> None:
        """Publish ``user.permissions.updated`` with the old and the new permissions."""
        payload = user_events_pb2.UserPermissionsUpdated(
            actor=event_actor(actor),
            user_id=user.user_id,
            permissions=policy_to_proto(user.policy),
            previous_permissions=policy_to_proto(previous),
            revision=user.revision,
        )
        self._publisher.publish(session, payload, subject=_subject(user.user_id))


class AuthHandlers:
    """Handlers of the ``auth.*`` events the plugin consumes.

    Args:
        users: The core they provision users in.
        clock: The time of a login whose event carries none.
    """

    def __init__(self, users: Users, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._users = users
        self._clock = clock

    async def on_login(self, event: ReceivedEvent, session: AsyncSession) -> None:
        """``auth.login``: make sure the user exists; record when they logged in."""
        payload = _expect(event, auth_events_pb2.AuthLogin)
        login = _login(event, payload.user_id, payload.email, payload.display_name)
        if login is not None:
            login_time = event.time if event.envelope.HasField("time") else self._clock.now()
            await self._users.provision(session, login, login_time=login_time)

    async def on_user_created(self, event: ReceivedEvent, session: AsyncSession) -> None:
        """``auth.user.created``: make sure the user exists."""
        payload = _expect(event, auth_events_pb2.AuthUserCreated)
        login = _login(event, payload.user_id, payload.email, payload.display_name)
        if login is not None:
            await self._users.provision(session, login, login_time=None)


def subscribe(bus: Subscriber, users: Users, *, clock: Clock = SYSTEM_CLOCK) -> None:
    """Subscribe the plugin's handlers to ``bus`` (before it starts)."""
    handlers = AuthHandlers(users, clock=clock)
    bus.subscribe(LOGIN, handlers.on_login)
    bus.subscribe(USER_CREATED, handlers.on_user_created)


def _subject(user_id: str) -> str:
    return f"users/{user_id}"


def _expect(event: ReceivedEvent, cls: type[_M]) -> _M:
    payload = event.payload
    if not isinstance(payload, cls):
        raise EnvelopeError(
            f"event {event.id} of type {event.type} carries {payload.DESCRIPTOR.full_name}"
        )
    return payload


def _login(event: ReceivedEvent, user_id: str, email: str, display_name: str) -> Login | None:
    """The user an auth event names, or None (logged) when it cannot be a user."""
    try:
        valid_user_id(user_id, "user_id")
    except InvalidArgument as exc:
        # Retrying cannot fix the event: log it and let it be acknowledged.
        log.warning(
            "auth event ignored: %s",
            exc.message,
            extra={"event_id": event.id, "event_type": event.type},
        )
        return None
    try:
        email = valid_email(email, "email")
    except InvalidArgument:
        email = ""
    return Login(user_id=user_id, email=email, display_name=display_name[:MAX_DISPLAY_NAME_LENGTH])
