"""UpdateMachineUser: what the mask changes, what it refuses, etags, and its one event."""

from __future__ import annotations

import grpc
import nats
import pytest
from nats.aio.msg import Msg

from launcher.natsd import NatsServer
from meshkit.events import parse_event, subject_of, unpack_payload
from plugmesh.events.v1 import event_pb2, machine_user_events_pb2
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from tests.services.machineusers.conftest import Running
from tests.services.machineusers.support import ADMIN, Api, failure
from tests.services.machineusers.test_events import until_received, written_events

MU = machineusers_pb2.MachineUser


def _rules(*patterns: str) -> users_pb2.Permissions:
    return users_pb2.Permissions(
        rules=[users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=p) for p in patterns]
    )


def _view(user: machineusers_pb2.MachineUser) -> tuple[str, str, int, list[str], bool]:
    """What an update may change: name, description, role, rule patterns, admin flag."""
    patterns = [rule.pattern for rule in user.permissions.rules]
    return user.name, user.description, user.role, patterns, user.permissions.admin


# The machine user every case starts from: "before", "old", ROLE_USER, allow a/b.
BEFORE = ("before", "old", users_pb2.ROLE_USER, ["a/b"], False)


@pytest.mark.parametrize(
    ("change", "paths", "after"),
    [
        pytest.param(
            MU(description="new"), ("description",), ("before", "new", 1, ["a/b"], False), id="desc"
        ),
        pytest.param(
            MU(role=users_pb2.ROLE_ADMIN),
            ("role",),
            ("before", "old", 2, ["a/b"], False),
            id="role",
        ),
        pytest.param(
            MU(permissions=_rules("x/*", "y/z")),
            ("permissions",),
            ("before", "old", 1, ["x/*", "y/z"], False),
            id="permissions",
        ),
        pytest.param(MU(), ("permissions",), ("before", "old", 1, [], False), id="clear-rules"),
        pytest.param(MU(name="after"), ("name",), ("after", "old", 1, ["a/b"], False), id="name"),
        pytest.param(
            MU(description="new", role=users_pb2.ROLE_ADMIN),
            ("description",),
            ("before", "new", 1, ["a/b"], False),
            id="mask-limits",
        ),
        pytest.param(
            MU(description="new", permissions=users_pb2.Permissions(admin=True)),
            None,
            ("before", "new", 1, [], True),
            id="no-mask-populated",
        ),
        pytest.param(
            MU(name="star"),
            ("*",),
            ("star", "", users_pb2.ROLE_USER, [], False),
            id="star-all",
        ),
    ],
)
async def test_the_mask_says_what_changes(
    api: Api,
    change: machineusers_pb2.MachineUser,
    paths: tuple[str, ...] | None,
    after: tuple[str, str, int, list[str], bool],
) -> None:
    created = await api.create("before", rules=("a/b",))
    original = created.machine_user
    await api.update(MU(machine_user_id=original.machine_user_id, description="old"))
    change.machine_user_id = original.machine_user_id

    updated = await api.update(change, paths)

    assert _view(updated) == after
    assert _view(await api.get(original.machine_user_id)) == after
    assert updated.token_info == original.token_info, "the token stays"
    assert updated.create_time == original.create_time
    assert (await api.validate(created.token)).valid


@pytest.mark.parametrize(
    ("paths", "field", "path"),
    [
        pytest.param(("nope",), "update_mask", "nope", id="unknown"),
        pytest.param(("token_info",), "update_mask", "token_info", id="output-only"),
        pytest.param(("create_time",), "update_mask", "create_time", id="create-time"),
        pytest.param(("machine_user_id",), "update_mask", "machine_user_id", id="id"),
        pytest.param(("expire_time",), "update_mask", "expire_time", id="expiry"),
        pytest.param(("description", "etag"), "update_mask", "etag", id="etag"),
    ],
)
async def test_a_mask_naming_a_field_it_cannot_update_is_refused(
    api: Api, paths: tuple[str, ...], field: str, path: str
) -> None:
    target = (await api.create("masked")).machine_user

    refused = await failure(
        api.update(MU(machine_user_id=target.machine_user_id, description="x"), paths)
    )

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.metadata["field"] == field
    assert refused.metadata["path"] == path
    assert path in refused.message
    assert (await api.get(target.machine_user_id)).description == "", "nothing changed"


@pytest.mark.parametrize(
    ("change", "paths", "field"),
    [
        pytest.param(MU(name="a b"), ("name",), "machine_user.name", id="bad-name"),
        pytest.param(MU(), ("name",), "machine_user.name", id="empty-name"),
        pytest.param(
            MU(description="d" * 1025), ("description",), "machine_user.description", id="long"
        ),
        pytest.param(
            MU(role=users_pb2.Role.ValueType(7)), ("role",), "machine_user.role", id="role"
        ),
        pytest.param(
            MU(permissions=_rules("a/b/c")),
            ("permissions",),
            "machine_user.permissions.rules[0].pattern",
            id="rule-grammar",
        ),
        pytest.param(
            MU(permissions=_rules("ok/ok", "")),
            None,
            "machine_user.permissions.rules[1].pattern",
            id="rule-grammar-no-mask",
        ),
    ],
)
async def test_bad_values_are_refused_naming_the_field(
    api: Api, change: machineusers_pb2.MachineUser, paths: tuple[str, ...] | None, field: str
) -> None:
    target = (await api.create("validated", rules=("a/b",))).machine_user
    change.machine_user_id = target.machine_user_id

    refused = await failure(api.update(change, paths))

    assert (refused.code, refused.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    assert _view(await api.get(target.machine_user_id)) == _view(target)


@pytest.mark.parametrize(
    ("machine_user_id", "code"),
    [
        pytest.param("", grpc.StatusCode.INVALID_ARGUMENT, id="no-id"),
        pytest.param("a/b", grpc.StatusCode.INVALID_ARGUMENT, id="bad-id"),
        pytest.param("no-such-id", grpc.StatusCode.NOT_FOUND, id="missing"),
    ],
)
async def test_the_machine_user_must_be_named_and_exist(
    api: Api, machine_user_id: str, code: grpc.StatusCode
) -> None:
    refused = await failure(api.update(MU(machine_user_id=machine_user_id, description="x")))

    assert refused.code == code


async def test_a_request_without_a_machine_user_is_refused(api: Api) -> None:
    request = machineusers_pb2.UpdateMachineUserRequest()

    refused = await failure(api.stub.UpdateMachineUser(request, metadata=api.metadata(ADMIN)))

    assert (refused.code, refused.metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "machine_user",
    )


async def test_a_taken_name_is_already_exists(api: Api) -> None:
    await api.create("taken")
    target = (await api.create("mine")).machine_user

    refused = await failure(api.update(MU(machine_user_id=target.machine_user_id, name="taken")))

    assert (refused.code, refused.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "MACHINE_USER_NAME_TAKEN",
    )
    assert (await api.get(target.machine_user_id)).name == "mine"


async def test_a_stale_etag_is_aborted_and_the_current_one_works(api: Api) -> None:
    target = (await api.create("versioned")).machine_user
    first = await api.update(
        MU(machine_user_id=target.machine_user_id, description="one", etag=target.etag)
    )
    assert first.etag
    assert first.etag != target.etag

    stale = await failure(
        api.update(MU(machine_user_id=target.machine_user_id, description="two", etag=target.etag))
    )
    second = await api.update(
        MU(machine_user_id=target.machine_user_id, description="two", etag=first.etag)
    )

    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert second.description == "two"
    assert (await api.get(target.machine_user_id)).etag == second.etag


async def test_a_rotation_changes_the_etag(api: Api) -> None:
    target = (await api.create("rotated-etag")).machine_user

    rotated = await api.rotate(target.machine_user_id)
    stale = await failure(
        api.update(MU(machine_user_id=target.machine_user_id, description="x", etag=target.etag))
    )

    assert rotated.machine_user.etag != target.etag
    assert stale.code == grpc.StatusCode.ABORTED


async def test_an_update_that_changes_nothing_keeps_the_etag(api: Api) -> None:
    target = (await api.create("same", rules=("a/b",))).machine_user

    same = await api.update(
        MU(machine_user_id=target.machine_user_id, name="same", permissions=_rules("a/b")),
        ("name", "permissions"),
    )

    assert same.etag == target.etag


async def test_an_update_publishes_one_event_with_what_changed_and_a_no_op_none(
    running: Running, nats_server: NatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    received: dict[str, bytes] = {}

    async def collect(msg: Msg) -> None:
        received.setdefault(parse_event(msg.data).id, msg.data)

    await nc.subscribe(subject_of("machine_user.updated"), cb=collect)
    await nc.flush()
    api = running.api
    try:
        created = await api.create("evented-update", rules=("a/b",))
        machine_user_id = created.machine_user.machine_user_id
        before = await written_events(running)
        updated = await api.update(
            MU(
                machine_user_id=machine_user_id,
                description="same-as-before-is-not-a-change",
                role=users_pb2.ROLE_ADMIN,
                permissions=_rules("x/y"),
            ),
            ("role", "permissions"),
        )
        # Changes nothing now: no second event.
        await api.update(MU(machine_user_id=machine_user_id, role=users_pb2.ROLE_ADMIN), ("role",))
        await failure(api.update(MU(machine_user_id=machine_user_id, name="a b")))
        await until_received(running, received, before)
    finally:
        await nc.close()

    assert len(received) == 1
    (data,) = received.values()
    assert created.token.encode() not in data
    assert created.token[12:-4].encode() not in data
    event = parse_event(data)
    payload = unpack_payload(event)
    assert isinstance(payload, machine_user_events_pb2.MachineUserUpdated)
    assert event.type == "machine_user.updated"
    assert event.subject == f"machine-users/{machine_user_id}"
    assert payload.actor == event_pb2.Actor(type=event_pb2.ACTOR_TYPE_MACHINE, id=ADMIN.subject)
    assert list(payload.update_mask.paths) == ["role", "permissions"]
    assert payload.machine_user == updated
