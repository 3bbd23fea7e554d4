"""A user's whole life over gRPC against the running plugin, with the events it makes."""

from __future__ import annotations

import grpc
from nats.aio.client import Client

from plugmesh.events.v1 import event_pb2, user_events_pb2
from plugmesh.users.v1 import users_pb2
from services.users.app import UsersPlugin
from tests.services.users.support import (
    ADMIN,
    ALICE,
    Api,
    failure,
    payload_of,
    permissions,
    user_events,
)

ALLOW, DENY = users_pb2.EFFECT_ALLOW, users_pb2.EFFECT_DENY


async def test_a_user_is_created_read_changed_checked_and_deleted(
    api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    created = await api.create("alice", email="Alice@Example.com", display_name="Alice")
    assert (created.user_id, created.email, created.role) == (
        "alice",
        "Alice@Example.com",
        users_pb2.ROLE_USER,
    )
    assert created.permissions == permissions((ALLOW, "*")), "the seed's default"
    assert created.revision == 1
    assert created.etag
    assert not created.HasField("last_login_time")

    # Alice reads herself; the admin reads her too.
    assert await api.get("alice", by=ALICE) == created
    assert await api.get("alice") == created

    renamed = await api.update(
        users_pb2.User(user_id="alice", display_name="Alice A.", etag=created.etag),
        ["display_name"],
    )
    assert renamed.display_name == "Alice A."
    assert renamed.email == created.email
    assert renamed.revision == 2
    assert renamed.etag != created.etag
    assert renamed.create_time == created.create_time

    restricted = await api.set_permissions("alice", (ALLOW, "github/*"), (DENY, "*/delete_*"))
    assert restricted.revision == 3
    assert list(restricted.permissions.rules) == list(
        permissions((ALLOW, "github/*"), (DENY, "*/delete_*")).rules
    )

    allowed = await api.check("alice", "github", "create_issue", by=ALICE)
    assert allowed.allowed
    assert allowed.reason == users_pb2.DECISION_REASON_RULE
    assert allowed.matched_rule.index == 0
    assert allowed.matched_rule.rule.pattern == "github/*"
    assert allowed.policy_revision == 3
    denied = await api.check("alice", "github", "delete_repo")
    assert not denied.allowed
    assert (denied.matched_rule.index, denied.matched_rule.rule.pattern) == (1, "*/delete_*")
    other = await api.check("alice", "slack", "post")
    assert not other.allowed
    assert other.reason == users_pb2.DECISION_REASON_DEFAULT_DENY
    assert not other.HasField("matched_rule")

    listed = await api.list()
    assert [user.user_id for user in listed.users] == ["alice"]
    assert listed.users[0] == restricted

    await api.delete("alice", etag=restricted.etag)
    missing = await failure(api.get("alice"))
    assert missing.code is grpc.StatusCode.NOT_FOUND
    await api.delete("alice", allow_missing=True)

    events = await user_events(plugin, nc.jetstream())
    assert [(event.type, event.subject) for event in events] == [
        ("user.created", "users/alice"),
        ("user.updated", "users/alice"),
        ("user.permissions.updated", "users/alice"),
        ("user.deleted", "users/alice"),
    ]
    assert {event.source for event in events} == {"/plugmesh/users"}
    created_event = payload_of(events[0], user_events_pb2.UserCreated)
    assert created_event.user == created
    assert created_event.actor == event_pb2.Actor(
        type=event_pb2.ACTOR_TYPE_MACHINE, id=ADMIN.subject
    )
    updated_event = payload_of(events[1], user_events_pb2.UserUpdated)
    assert list(updated_event.update_mask.paths) == ["display_name"]
    assert updated_event.user == renamed
    permissions_event = payload_of(events[2], user_events_pb2.UserPermissionsUpdated)
    assert permissions_event.revision == 3
    assert permissions_event.previous_permissions == created.permissions
    assert permissions_event.permissions == restricted.permissions
    deleted_event = payload_of(events[3], user_events_pb2.UserDeleted)
    assert deleted_event.user == restricted


async def test_a_user_id_is_generated_when_none_is_given(api: Api) -> None:
    first = await api.create(email="x@example.com")
    second = await api.create()
    assert first.user_id
    assert second.user_id
    assert first.user_id != second.user_id
    assert await api.get(first.user_id) == first


async def test_a_user_created_with_permissions_keeps_them_even_when_empty(api: Api) -> None:
    given = permissions((DENY, "*/delete_*"), (ALLOW, "fs/read_?ile"), admin=True)
    user = await api.create("carol", permissions=given, role=users_pb2.ROLE_ADMIN)
    assert user.permissions == given
    assert user.role == users_pb2.ROLE_ADMIN
    nobody = await api.create("dave", permissions=users_pb2.Permissions())
    assert nobody.permissions == users_pb2.Permissions()
    decision = await api.check("dave", "fs", "read_file")
    assert (decision.allowed, decision.reason) == (
        False,
        users_pb2.DECISION_REASON_DEFAULT_DENY,
    )


async def test_output_only_fields_sent_on_create_are_ignored(api: Api) -> None:
    user = await api.create("erin", revision=42, etag="made-up", create_time={"seconds": 5})
    assert user.revision == 1
    assert user.etag != "made-up"
    assert user.create_time.seconds != 5


async def test_an_admin_flag_in_permissions_allows_every_tool(api: Api) -> None:
    await api.create("frank")
    user = await api.set_permissions("frank", (DENY, "*"), admin=True)
    decision = await api.check("frank", "github", "delete_repo")
    assert decision.allowed
    assert decision.reason == users_pb2.DECISION_REASON_ADMIN
    assert decision.policy_revision == user.revision
