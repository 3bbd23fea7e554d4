"""The machine-users plugin on the event bus: the ``machine_user.*`` events it publishes.

:class:`OutboxSink` turns each change :class:`~services.machineusers.core.MachineUsers`
makes into its payload and writes it to the outbox in the change's own transaction, so
an event exists exactly when the change does. No payload carries a token: a machine user
message holds only the token's display prefix and last four characters. The gateway's
token caches drop a machine user's entries on ``machine_user.deleted``,
``machine_user.token_rotated`` and ``machine_user.updated`` (its role or permissions may
have changed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from google.protobuf import field_mask_pb2
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.events.bus import Publisher
from meshkit.identity import Identity, event_actor
from plugmesh.events.v1 import machine_user_events_pb2
from services.machineusers.convert import machine_user_to_proto, timestamp
from services.machineusers.model import MachineUser

__all__ = ["CREATED", "DELETED", "TOKEN_ROTATED", "UPDATED", "OutboxSink", "subject_of"]

CREATED = "machine_user.created"
DELETED = "machine_user.deleted"
TOKEN_ROTATED = "machine_user.token_rotated"
UPDATED = "machine_user.updated"


def subject_of(machine_user_id: str) -> str:
    """The resource name events and audit entries use for a machine user."""
    return f"machine-users/{machine_user_id}"


class OutboxSink:
    """Publishes ``machine_user.*`` events via the outbox (a
    :class:`~services.machineusers.core.ChangeSink`)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def created(self, session: AsyncSession, actor: Identity, user: MachineUser) -> None:
        """Publish ``machine_user.created``."""
        payload = machine_user_events_pb2.MachineUserCreated(
            actor=event_actor(actor), machine_user=machine_user_to_proto(user)
        )
        self._publisher.publish(session, payload, subject=subject_of(user.machine_user_id))

    def updated(
        self, session: AsyncSession, actor: Identity, user: MachineUser, fields: Sequence[str]
    ) -> None:
        """Publish ``machine_user.updated`` with the new state and the fields that changed."""
        payload = machine_user_events_pb2.MachineUserUpdated(
            actor=event_actor(actor),
            machine_user=machine_user_to_proto(user),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        )
        self._publisher.publish(session, payload, subject=subject_of(user.machine_user_id))

    def deleted(self, session: AsyncSession, actor: Identity, user: MachineUser) -> None:
        """Publish ``machine_user.deleted`` with the machine user's last state."""
        payload = machine_user_events_pb2.MachineUserDeleted(
            actor=event_actor(actor), machine_user=machine_user_to_proto(user)
        )
        self._publisher.publish(session, payload, subject=subject_of(user.machine_user_id))

    def token_rotated(
        self,
        session: AsyncSession,
        actor: Identity,
        user: MachineUser,
        previous_token_expire_time: dt.datetime,
    ) -> None:
        """Publish ``machine_user.token_rotated`` with when the previous token stops."""
        payload = machine_user_events_pb2.MachineUserTokenRotated(
            actor=event_actor(actor),
            machine_user=machine_user_to_proto(user),
            previous_token_expire_time=timestamp(previous_token_expire_time),
        )
        self._publisher.publish(session, payload, subject=subject_of(user.machine_user_id))
