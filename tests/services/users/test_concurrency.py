"""Concurrent writes to one user, from two replicas on one database: none is lost."""

from __future__ import annotations

import asyncio

import grpc
from nats.aio.client import Client

from plugmesh.users.v1 import users_pb2
from services.users.app import UsersPlugin
from tests.services.users.support import Api, permissions, user_events

ALLOW = users_pb2.EFFECT_ALLOW


async def test_concurrent_updates_of_different_fields_all_survive(api: Api, twin_api: Api) -> None:
    await api.create("target")
    changes = [
        (api, users_pb2.User(user_id="target", display_name="Target"), ["display_name"]),
        (twin_api, users_pb2.User(user_id="target", email="t@example.com"), ["email"]),
        (api, users_pb2.User(user_id="target", role=users_pb2.ROLE_ADMIN), ["role"]),
        (
            twin_api,
            users_pb2.User(user_id="target", permissions=permissions((ALLOW, "fs/*"))),
            ["permissions"],
        ),
    ]
    await asyncio.gather(*(client.update(user, paths) for client, user, paths in changes))
    user = await api.get("target")
    assert (user.display_name, user.email, user.role) == (
        "Target",
        "t@example.com",
        users_pb2.ROLE_ADMIN,
    )
    assert user.permissions == permissions((ALLOW, "fs/*"))
    assert user.revision == 1 + len(changes)


async def test_many_concurrent_renames_each_bump_the_revision_once(
    api: Api, twin_api: Api, plugin: UsersPlugin, nc: Client
) -> None:
    await api.create("busy")
    clients = [api, twin_api]
    names = [f"name-{n}" for n in range(20)]
    updated = await asyncio.gather(
        *(
            clients[n % 2].update(users_pb2.User(user_id="busy", display_name=name))
            for n, name in enumerate(names)
        )
    )
    assert sorted(user.revision for user in updated) == list(range(2, 2 + len(names)))
    final = await api.get("busy")
    assert final.revision == 1 + len(names)
    assert final.display_name == max(updated, key=lambda user: user.revision).display_name
    events = await user_events(plugin, nc.jetstream())
    # One event per change. Their order in the stream is not promised across replicas:
    # each relays its own rows as they commit, and the one that wrote "created" may
    # publish it after the other published an update.
    assert sorted(event.type for event in events) == ["user.created"] + ["user.updated"] * len(
        names
    )


async def test_two_updates_with_the_same_etag_one_wins_one_is_aborted(
    api: Api, twin_api: Api
) -> None:
    created = await api.create("contested")
    results = await asyncio.gather(
        *(
            client.update(
                users_pb2.User(user_id="contested", display_name=name, etag=created.etag),
                ["display_name"],
            )
            for client, name in ((api, "left"), (twin_api, "right"))
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, users_pb2.User)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert [loser.code() for loser in losers] == [grpc.StatusCode.ABORTED]
    assert (await api.get("contested")).display_name == winners[0].display_name


async def test_concurrent_creates_of_one_email_let_exactly_one_through(
    api: Api, twin_api: Api
) -> None:
    results = await asyncio.gather(
        api.create("first", email="same@example.com"),
        twin_api.create("second", email="SAME@example.com"),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert [error.code() for error in errors] == [grpc.StatusCode.ALREADY_EXISTS]
    listed = await api.list(email="Same@Example.com")
    assert len(listed.users) == 1
