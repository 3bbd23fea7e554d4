"""The machine-users API over gRPC: create, get, list, delete, rotate and validate."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from services.machineusers import tokens
from tests.services.machineusers.conftest import Running
from tests.services.machineusers.support import ADMIN, Api, failure

VALID = machineusers_pb2.INVALID_REASON_UNSPECIFIED
MALFORMED = machineusers_pb2.INVALID_REASON_MALFORMED
UNKNOWN = machineusers_pb2.INVALID_REASON_UNKNOWN
EXPIRED = machineusers_pb2.INVALID_REASON_EXPIRED


async def test_create_returns_the_token_once_and_it_validates(api: Api) -> None:
    created = await api.create("ci-deploy", rules=("github/*",))

    token = created.token
    user = created.machine_user
    assert token.startswith("pmk_")
    assert user.name == "ci-deploy"
    assert user.role == users_pb2.ROLE_USER
    assert [r.pattern for r in user.permissions.rules] == ["github/*"]
    assert user.creator_id == ADMIN.subject
    assert user.token_info.prefix == token[:12]
    assert user.token_info.last_four == token[-4:]

    answer = await api.validate(token)
    assert answer.valid
    assert answer.invalid_reason == VALID
    assert answer.machine_user.machine_user_id == user.machine_user_id
    assert answer.machine_user.permissions == user.permissions


async def test_get_and_list_never_return_a_secret(api: Api) -> None:
    created = [await api.create(f"bot-{i}") for i in range(3)]
    token_bodies = [c.token[12:-4] for c in created]

    got = await api.get(created[0].machine_user.machine_user_id)
    listed = await api.list()

    assert [u.name for u in listed.machine_users] == ["bot-2", "bot-1", "bot-0"]
    for message in (got, *listed.machine_users):
        wire = message.SerializeToString()
        assert not any(body.encode() in wire for body in token_bodies)
        assert message.token_info.prefix.startswith("pmk_")
        assert len(message.token_info.last_four) == 4
        assert message.HasField("create_time")
        assert message.HasField("expire_time"), "the maximum lifetime applies"
        assert message.token_info.HasField("issue_time")


async def test_list_pages_newest_first(api: Api) -> None:
    for i in range(5):
        await api.create(f"pager-{i}")

    first = await api.list(page_size=2)
    second = await api.list(page_size=2, page_token=first.next_page_token)
    third = await api.list(page_size=2, page_token=second.next_page_token)

    names = [u.name for page in (first, second, third) for u in page.machine_users]
    assert names == [f"pager-{i}" for i in (4, 3, 2, 1, 0)]
    assert third.next_page_token == ""
    bad = await failure(api.list(page_token="garbage"))
    assert (bad.code, bad.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")


async def test_a_deleted_machine_users_token_is_unknown(api: Api) -> None:
    created = await api.create("short-lived")

    await api.delete(created.machine_user.machine_user_id)

    assert (await api.validate(created.token)).invalid_reason == UNKNOWN
    missing = await failure(api.get(created.machine_user.machine_user_id))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    again = await failure(api.delete(created.machine_user.machine_user_id))
    assert again.code == grpc.StatusCode.NOT_FOUND
    await api.delete(created.machine_user.machine_user_id, allow_missing=True)


async def test_rotation_without_grace_stops_the_old_token_at_once(api: Api) -> None:
    created = await api.create("rotator")

    rotated = await api.rotate(created.machine_user.machine_user_id)

    assert rotated.token != created.token
    assert rotated.machine_user.token_info.prefix == rotated.token[:12]
    assert not rotated.machine_user.token_info.HasField("previous_token_expire_time")
    assert (await api.validate(created.token)).invalid_reason == UNKNOWN
    assert (await api.validate(rotated.token)).valid


async def test_rotation_with_grace_keeps_the_old_token_until_it_ends(running: Running) -> None:
    api, clock = running.api, running.clock
    created = await api.create("graceful")

    rotated = await api.rotate(created.machine_user.machine_user_id, grace_seconds=60)

    info = rotated.machine_user.token_info
    assert info.previous_token_expire_time.ToDatetime(tzinfo=dt.UTC) == clock.now() + dt.timedelta(
        seconds=60
    )
    old = await api.validate(created.token)
    assert old.valid
    assert old.expire_time == info.previous_token_expire_time
    clock.advance(seconds=61)
    assert (await api.validate(created.token)).invalid_reason == EXPIRED
    assert (await api.validate(rotated.token)).valid


async def test_a_second_rotation_ends_the_first_ones_grace(api: Api) -> None:
    created = await api.create("twice")
    machine_user_id = created.machine_user.machine_user_id

    first = await api.rotate(machine_user_id, grace_seconds=600)
    second = await api.rotate(machine_user_id, grace_seconds=600)

    assert (await api.validate(created.token)).invalid_reason == UNKNOWN
    assert (await api.validate(first.token)).valid
    assert (await api.validate(second.token)).valid


async def test_an_expired_machine_user_is_refused(running: Running) -> None:
    api, clock = running.api, running.clock
    created = await api.create("expiring", ttl_seconds=30)

    answer = await api.validate(created.token)
    assert answer.valid
    assert answer.expire_time == created.machine_user.expire_time
    clock.advance(seconds=30)

    assert (await api.validate(created.token)).invalid_reason == EXPIRED
    rotate = await failure(api.rotate(created.machine_user.machine_user_id))
    assert (rotate.code, rotate.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "MACHINE_USER_EXPIRED",
    )


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-token", id="garbage"),
        pytest.param("pmk_" + "a" * 49, id="bad-checksum"),
    ],
)
async def test_a_malformed_token_is_an_answer_not_an_error(api: Api, token: str) -> None:
    answer = await api.validate(token)

    assert not answer.valid
    assert answer.invalid_reason == MALFORMED
    assert not answer.HasField("machine_user")


async def test_a_well_formed_token_nobody_has_is_unknown(api: Api) -> None:
    assert (await api.validate(tokens.issue().token)).invalid_reason == UNKNOWN


async def test_the_last_used_time_is_written_at_most_once_per_interval(running: Running) -> None:
    api, clock = running.api, running.clock
    created = await api.create("busy")
    machine_user_id = created.machine_user.machine_user_id
    assert not created.machine_user.HasField("last_used_time")

    first = clock.now()
    await api.validate(created.token)
    clock.advance(seconds=30)
    await api.validate(created.token)  # within the 60 s interval: not written
    assert (await api.get(machine_user_id)).last_used_time.ToDatetime(tzinfo=dt.UTC) == first

    clock.advance(seconds=31)
    await api.validate(created.token)
    later = (await api.get(machine_user_id)).last_used_time.ToDatetime(tzinfo=dt.UTC)
    assert later == clock.now()
