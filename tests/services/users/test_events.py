"""Events out (each change makes exactly its events, in its transaction) and in
(``auth.login`` and ``auth.user.created`` provision users once, even when redelivered)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
from nats.aio.client import Client
from sqlalchemy import func, select

from meshkit.events.tables import InboxRecord
from plugmesh.events.v1 import auth_events_pb2, event_pb2, user_events_pb2
from plugmesh.users.v1 import users_pb2
from services.users.app import UsersPlugin
from tests.services.users.support import (
    Api,
    auth_event,
    consumer_settled,
    deliver,
    failure,
    payload_of,
    permissions,
    user_events,
)

ALLOW, DENY = users_pb2.EFFECT_ALLOW, users_pb2.EFFECT_DENY
LOGINS = "users-auth_login"
SIGNUPS = "users-auth_user_created"

Step = Callable[[Api], Awaitable[object]]


def _rename(name: str) -> Step:
    return lambda api: api.update(users_pb2.User(user_id="u1", display_name=name), ["display_name"])


async def _stale_update(api: Api) -> None:
    await failure(api.update(users_pb2.User(user_id="u1", display_name="z", etag="stale")))


# (step, what it does, the events it must add)
STEPS: list[tuple[str, Step, list[str]]] = [
    ("create", lambda api: api.create("u1", email="u1@example.com"), ["user.created"]),
    ("rename", _rename("One"), ["user.updated"]),
    ("rename-again-is-a-no-op", _rename("One"), []),
    (
        "update-with-permissions",
        lambda api: api.update(
            users_pb2.User(
                user_id="u1", display_name="Uno", permissions=permissions((ALLOW, "github/*"))
            ),
            ["display_name", "permissions"],
        ),
        ["user.updated", "user.permissions.updated"],
    ),
    ("same-permissions-is-a-no-op", lambda api: api.set_permissions("u1", (ALLOW, "github/*")), []),
    (
        "replace-permissions",
        lambda api: api.set_permissions("u1", (DENY, "*")),
        ["user.permissions.updated"],
    ),
    (
        "mask-of-output-only-fields",
        lambda api: api.update(
            users_pb2.User(user_id="u1", revision=99), ["revision", "etag", "create_time"]
        ),
        [],
    ),
    ("failed-update", _stale_update, []),
    ("failed-create", lambda api: failure(api.create("u1")), []),
    (
        "promote",
        lambda api: api.update(users_pb2.User(user_id="u1", role=users_pb2.ROLE_ADMIN)),
        ["user.updated"],
    ),
    ("create-second", lambda api: api.create("u2"), ["user.created"]),
    ("delete-second", lambda api: api.delete("u2"), ["user.deleted"]),
    ("delete-missing-allowed", lambda api: api.delete("u2", allow_missing=True), []),
]


async def test_each_change_publishes_exactly_its_events(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    js = nc.jetstream()
    seen: list[event_pb2.Event] = []
    for name, step, expected in STEPS:
        await step(api)
        events = await user_events(plugin, js)
        added = [event.type for event in events[len(seen) :]]
        assert added == expected, f"step {name}"
        seen = events
    assert len({event.id for event in seen}) == len(seen)
    revisions = [
        payload_of(event, user_events_pb2.UserUpdated).user.revision
        for event in seen
        if event.type == "user.updated"
    ]
    assert revisions == sorted(revisions)
    promote = payload_of(seen[-3], user_events_pb2.UserUpdated)
    assert list(promote.update_mask.paths) == ["role"]


async def test_an_unknown_user_logging_in_is_created_once_even_when_redelivered(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    js = nc.jetstream()
    login = auth_event(
        auth_events_pb2.AuthLogin(
            actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id="sub-1"),
            user_id="sub-1",
            email="Sub1@Example.com",
            display_name="Sub One",
            issuer="https://idp.example.com",
        )
    )
    await deliver(js, login)
    await deliver(js, login)  # the same Nats-Msg-Id: JetStream drops it
    await deliver(js, login, copy=1)  # stored again: the consumer sees the id twice
    last = await deliver(js, login, copy=2)
    await consumer_settled(js, LOGINS, last)

    user = await api.get("sub-1")
    assert (user.email, user.display_name, user.role) == (
        "Sub1@Example.com",
        "Sub One",
        users_pb2.ROLE_USER,
    )
    assert user.permissions == permissions((ALLOW, "*")), "the seed's default"
    assert user.last_login_time == login.time
    assert user.revision == 1

    events = await user_events(plugin, js)
    assert [event.type for event in events] == ["user.created"]
    created = payload_of(events[0], user_events_pb2.UserCreated)
    assert created.actor == event_pb2.Actor(type=event_pb2.ACTOR_TYPE_SERVICE, id="users")
    assert created.user == user
    async with plugin.database.read() as session:
        handled = await session.scalar(
            select(func.count()).select_from(InboxRecord).where(InboxRecord.consumer == LOGINS)
        )
    assert handled == 1


async def test_later_logins_move_the_login_time_forward_only_and_publish_nothing(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    js = nc.jetstream()
    start = dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)

    def login(minutes: int) -> event_pb2.Event:
        payload = auth_events_pb2.AuthLogin(user_id="sub-2", email="sub2@example.com")
        return auth_event(payload, time=start + dt.timedelta(minutes=minutes))

    first, later, earlier = login(0), login(10), login(-10)
    last = 0
    for event in (first, later, earlier):
        last = await deliver(js, event)
    await consumer_settled(js, LOGINS, last)

    user = await api.get("sub-2")
    assert user.last_login_time == later.time
    assert user.revision == 1
    assert [event.type for event in await user_events(plugin, js)] == ["user.created"]


async def test_a_signup_creates_the_user_without_a_login(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    js = nc.jetstream()
    signup = auth_event(
        auth_events_pb2.AuthUserCreated(user_id="sub-3", email="sub3@example.com", display_name="3")
    )
    await deliver(js, signup)
    await consumer_settled(js, SIGNUPS, await deliver(js, signup, copy=1))
    user = await api.get("sub-3")
    assert not user.HasField("last_login_time")
    assert user.permissions == permissions((ALLOW, "*"))

    login = auth_event(auth_events_pb2.AuthLogin(user_id="sub-3"))
    await consumer_settled(js, LOGINS, await deliver(js, login))
    assert (await api.get("sub-3")).HasField("last_login_time")
    assert [event.type for event in await user_events(plugin, js)] == ["user.created"]


async def test_a_login_for_an_existing_user_keeps_what_an_admin_set(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    js = nc.jetstream()
    made = await api.create("sub-4", email="set@example.com", role=users_pb2.ROLE_ADMIN)
    await api.set_permissions("sub-4", (DENY, "*"))
    payload = auth_events_pb2.AuthLogin(user_id="sub-4", email="idp@example.com", display_name="I")
    await consumer_settled(js, LOGINS, await deliver(js, auth_event(payload)))
    user = await api.get("sub-4")
    assert (user.email, user.role, user.revision) == (made.email, users_pb2.ROLE_ADMIN, 2)
    assert user.permissions == permissions((DENY, "*"))
    assert user.HasField("last_login_time")


@pytest.mark.parametrize(
    ("payload", "user_id", "email"),
    [
        pytest.param(
            auth_events_pb2.AuthLogin(user_id="sub-5", email="taken@example.com"),
            "sub-5",
            "",
            id="email-taken-is-left-out",
        ),
        pytest.param(
            auth_events_pb2.AuthLogin(user_id="sub-6", email="not an email"),
            "sub-6",
            "",
            id="malformed-email-is-left-out",
        ),
        pytest.param(
            auth_events_pb2.AuthUserCreated(user_id="a/b", email="x@example.com"),
            None,
            "",
            id="impossible-user-id-is-ignored",
        ),
        pytest.param(
            auth_events_pb2.AuthLogin(user_id="", email="y@example.com"),
            None,
            "",
            id="empty-user-id-is-ignored",
        ),
    ],
)
async def test_auth_events_that_cannot_be_taken_as_they_are(
    api: Api,
    plugin: UsersPlugin,
    nc: Client,
    payload: auth_events_pb2.AuthLogin | auth_events_pb2.AuthUserCreated,
    user_id: str | None,
    email: str,
) -> None:
    js = nc.jetstream()
    await api.create("owner", email="taken@example.com")
    seq = await deliver(js, auth_event(payload))
    consumer = LOGINS if isinstance(payload, auth_events_pb2.AuthLogin) else SIGNUPS
    await consumer_settled(js, consumer, seq)
    listed = await api.list()
    ids = {user.user_id for user in listed.users}
    if user_id is None:
        assert ids == {"owner"}
    else:
        assert ids == {"owner", user_id}
        assert (await api.get(user_id)).email == email
    dead = await nc.jetstream().stream_info("PLUGMESH_DLQ")
    assert dead.state.messages == 0
