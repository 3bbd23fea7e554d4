"""Test support: identities, a client that signs them, and readers of the event stream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import nats.errors
from google.protobuf import message
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select

from meshkit.errors import error_info
from meshkit.events import build_event, parse_event, source_of, subject_of, unpack_payload
from meshkit.events.streams import EVENTS_STREAM
from meshkit.events.tables import OutboxRecord
from meshkit.identity import Identity, PrincipalKind, to_metadata
from plugmesh.events.v1 import event_pb2
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from services.users.app import UsersPlugin
from tests.support.waiting import eventually

SECRET = "users-test-secret"
#: How long a test waits for something asynchronous (generous: machines get busy).
DEADLINE_SECONDS = 20.0

#: An admin machine user, as the gateway asserts it (the bootstrap admin token).
ADMIN = Identity(PrincipalKind.MACHINE, "mu-admin", admin=True)
#: A mesh service calling for itself.
SERVICE = Identity(PrincipalKind.SERVICE, "gateway")
#: People without admin rights from the gateway.
ALICE = Identity(PrincipalKind.USER, "alice", email="alice@example.com")
BOB = Identity(PrincipalKind.USER, "bob", email="bob@example.com")
#: A machine user without admin rights.
MACHINE = Identity(PrincipalKind.MACHINE, "mu-ci")

_R = TypeVar("_R", bound=message.Message)


class Api:
    """The users API as a given caller sees it."""

    def __init__(self, stub: users_pb2_grpc.UserServiceAsyncStub, key: bytes) -> None:
        self.stub = stub
        self._key = key

    def metadata(self, identity: Identity | None) -> tuple[tuple[str, str], ...]:
        """The call metadata that carries ``identity`` (none for anonymous)."""
        return to_metadata(identity, self._key) if identity is not None else ()

    def metadata_admin(self) -> tuple[tuple[str, str], ...]:
        """The call metadata of :data:`ADMIN`."""
        return self.metadata(ADMIN)

    async def create(
        self, user_id: str = "", *, by: Identity | None = ADMIN, **fields: object
    ) -> users_pb2.User:
        """CreateUser with these fields."""
        user = users_pb2.User(user_id=user_id, **fields)  # type: ignore[arg-type]  # test kwargs
        request = users_pb2.CreateUserRequest(user=user)
        response = await self.stub.CreateUser(request, metadata=self.metadata(by))
        return response.user

    async def get(self, user_id: str, *, by: Identity | None = ADMIN) -> users_pb2.User:
        """GetUser."""
        request = users_pb2.GetUserRequest(user_id=user_id)
        return (await self.stub.GetUser(request, metadata=self.metadata(by))).user

    async def update(
        self,
        user: users_pb2.User,
        paths: list[str] | None = None,
        *,
        by: Identity | None = ADMIN,
    ) -> users_pb2.User:
        """UpdateUser with a mask of ``paths`` (none: no mask)."""
        request = users_pb2.UpdateUserRequest(user=user)
        if paths is not None:
            request.update_mask.paths.extend(paths)
        return (await self.stub.UpdateUser(request, metadata=self.metadata(by))).user

    async def delete(
        self,
        user_id: str,
        *,
        by: Identity | None = ADMIN,
        etag: str = "",
        allow_missing: bool = False,
    ) -> None:
        """DeleteUser."""
        request = users_pb2.DeleteUserRequest(
            user_id=user_id, etag=etag, allow_missing=allow_missing
        )
        await self.stub.DeleteUser(request, metadata=self.metadata(by))

    async def set_permissions(
        self,
        user_id: str,
        *rules: tuple[users_pb2.Effect.ValueType, str],
        admin: bool = False,
        by: Identity | None = ADMIN,
    ) -> users_pb2.User:
        """UpdateUserPermissions with ``(effect, pattern)`` rules."""
        request = users_pb2.UpdateUserPermissionsRequest(
            user_id=user_id, permissions=permissions(*rules, admin=admin)
        )
        return (await self.stub.UpdateUserPermissions(request, metadata=self.metadata(by))).user

    async def check(
        self, user_id: str, server: str, tool: str, *, by: Identity | None = ADMIN
    ) -> users_pb2.CheckPermissionResponse:
        """CheckPermission."""
        request = users_pb2.CheckPermissionRequest(user_id=user_id, server=server, tool=tool)
        return await self.stub.CheckPermission(request, metadata=self.metadata(by))

    async def list(
        self,
        *,
        by: Identity | None = ADMIN,
        page_size: int = 0,
        page_token: str = "",
        role: users_pb2.Role.ValueType = users_pb2.ROLE_UNSPECIFIED,
        email: str = "",
    ) -> users_pb2.ListUsersResponse:
        """ListUsers."""
        request = users_pb2.ListUsersRequest(
            page_size=page_size, page_token=page_token, role=role, email=email
        )
        return await self.stub.ListUsers(request, metadata=self.metadata(by))


def permissions(
    *rules: tuple[users_pb2.Effect.ValueType, str], admin: bool = False
) -> users_pb2.Permissions:
    """Permissions from ``(effect, pattern)`` pairs."""
    return users_pb2.Permissions(
        admin=admin,
        rules=[
            users_pb2.PermissionRule(effect=effect, pattern=pattern) for effect, pattern in rules
        ],
    )


@dataclass(frozen=True)
class Failure:
    """What a failed call reported."""

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]


async def failure(call: Awaitable[object]) -> Failure:
    """Await ``call``, which must fail; return its status and ErrorInfo."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        return Failure(
            exc.code(),
            exc.details() or "",
            info.reason if info else "",
            dict(info.metadata) if info else {},
        )
    raise AssertionError("the call succeeded")


async def outbox_drained(plugin: UsersPlugin) -> None:
    """Wait until every event the plugin wrote to its outbox is in the stream."""

    async def drained() -> bool | None:
        async with plugin.database.read() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
            )
        return True if pending == 0 else None

    await eventually(drained, timeout_seconds=DEADLINE_SECONDS, what="the outbox to be relayed")


async def stream_events(js: JetStreamContext, pattern: str) -> list[event_pb2.Event]:
    """Every event in the stream whose type matches ``pattern``, oldest first."""
    consumer = await js.add_consumer(
        EVENTS_STREAM,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject=subject_of(pattern),
            inactive_threshold=30.0,
        ),
    )
    assert consumer.name is not None
    pending = consumer.num_pending or 0
    subscription = await js.pull_subscribe_bind(consumer=consumer.name, stream=EVENTS_STREAM)
    events: list[event_pb2.Event] = []
    try:
        while len(events) < pending:
            try:
                msgs = await subscription.fetch(pending - len(events), timeout=5)
            except nats.errors.TimeoutError:
                break
            events += [parse_event(msg.data) for msg in msgs]
    finally:
        await subscription.unsubscribe()
        await js.delete_consumer(EVENTS_STREAM, consumer.name)
    return events


async def user_events(plugin: UsersPlugin, js: JetStreamContext) -> list[event_pb2.Event]:
    """Every ``user.*`` event the plugin published so far, once all are in the stream."""
    await outbox_drained(plugin)
    return await stream_events(js, "user.>")


def payload_of(event: event_pb2.Event, cls: type[_R]) -> _R:
    """The payload of ``event``, which must be a ``cls``."""
    payload = unpack_payload(event)
    assert isinstance(payload, cls), f"{event.type} carries {payload.DESCRIPTOR.full_name}"
    return payload


def auth_event(payload: message.Message, *, time: dt.datetime | None = None) -> event_pb2.Event:
    """An envelope as the gateway would publish it."""
    return build_event(payload, source=source_of("gateway"), time=time)


async def deliver(js: JetStreamContext, event: event_pb2.Event, *, copy: int = 0) -> int:
    """Put ``event`` on the stream; return its stream sequence number. ``copy`` > 0
    stores it again under another ``Nats-Msg-Id``, past JetStream's dedupe: the consumer
    gets the same event id again, as after a lost acknowledgement."""
    headers = {"Nats-Msg-Id": event.id if copy == 0 else f"{event.id}-copy-{copy}"}
    ack = await js.publish(subject_of(event.type), event.SerializeToString(), headers=headers)
    return ack.seq


async def consumer_settled(js: JetStreamContext, consumer: str, through: int) -> None:
    """Wait until ``consumer`` has handled and acknowledged the stream up to sequence
    ``through`` (its pending counts alone lag behind a publish)."""

    async def settled() -> bool | None:
        info = await js.consumer_info(EVENTS_STREAM, consumer)
        acked = info.ack_floor.stream_seq if info.ack_floor else 0
        return True if (acked or 0) >= through and info.num_ack_pending == 0 else None

    await eventually(
        settled, timeout_seconds=DEADLINE_SECONDS, what=f"consumer {consumer} to settle"
    )
