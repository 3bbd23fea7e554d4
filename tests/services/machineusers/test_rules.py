"""Bad input, the maximum lifetime, and who may call what."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from launcher.natsd import NatsServer
from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY, Identity, PrincipalKind
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from tests.services.machineusers.conftest import Running, running_plugin
from tests.services.machineusers.support import ALICE, SERVICE, Api, failure

MACHINE = Identity(PrincipalKind.MACHINE, "mu-ci")


@pytest.mark.parametrize(
    ("user", "field"),
    [
        pytest.param(machineusers_pb2.MachineUser(), "machine_user.name", id="no-name"),
        pytest.param(machineusers_pb2.MachineUser(name="a b"), "machine_user.name", id="space"),
        pytest.param(machineusers_pb2.MachineUser(name="x" * 129), "machine_user.name", id="long"),
        pytest.param(
            machineusers_pb2.MachineUser(name="ok", description="d" * 1025),
            "machine_user.description",
            id="description",
        ),
        pytest.param(
            machineusers_pb2.MachineUser(name="ok", role=users_pb2.Role.ValueType(7)),
            "machine_user.role",
            id="role",
        ),
        pytest.param(
            machineusers_pb2.MachineUser(
                name="ok",
                permissions=users_pb2.Permissions(
                    rules=[users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="a/b/c")]
                ),
            ),
            "machine_user.permissions.rules[0].pattern",
            id="rule-grammar",
        ),
        pytest.param(
            machineusers_pb2.MachineUser(name="ok", ttl=duration_pb2.Duration(seconds=-5)),
            "machine_user.ttl",
            id="negative-ttl",
        ),
        pytest.param(
            machineusers_pb2.MachineUser(name="ok", ttl=duration_pb2.Duration(seconds=400 * 86400)),
            "machine_user.ttl",
            id="ttl-beyond-max-lifetime",
        ),
        pytest.param(
            # The largest valid Duration: 10,000 years, past what a datetime can hold.
            machineusers_pb2.MachineUser(
                name="ok", ttl=duration_pb2.Duration(seconds=315576000000)
            ),
            "machine_user.ttl",
            id="ttl-past-year-9999",
        ),
    ],
)
async def test_bad_machine_users_are_refused_naming_the_field(
    api: Api, user: machineusers_pb2.MachineUser, field: str
) -> None:
    request = machineusers_pb2.CreateMachineUserRequest(machine_user=user)

    refused = await failure(api.stub.CreateMachineUser(request, metadata=api.metadata(SERVICE)))

    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.metadata["field"] == field


async def test_an_expiry_in_the_past_or_beyond_the_maximum_is_refused(running: Running) -> None:
    api, now = running.api, running.clock.now()

    past = await failure(api.create("p", expire_time=now - dt.timedelta(seconds=1)))
    far = await failure(api.create("f", expire_time=now + dt.timedelta(days=366)))

    assert past.metadata["field"] == far.metadata["field"] == "machine_user.expire_time"
    assert "maximum lifetime of 31536000 seconds" in far.message


async def test_the_maximum_lifetime_is_configurable_and_0_lifts_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    limit = "PLUGMESH_MACHINE_USERS_MAX_LIFETIME_SECONDS"
    async with running_plugin(tmp_path / "a", nats_server.url, env={limit: "3600"}) as short:
        created = await short.api.create("default-expiry")
        expires = created.machine_user.expire_time.ToDatetime(tzinfo=dt.UTC)
        assert expires == short.clock.now() + dt.timedelta(hours=1)
        refused = await failure(short.api.create("too-long", ttl_seconds=3601))
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT

    async with running_plugin(tmp_path / "b", nats_server.url, env={limit: "0"}) as unlimited:
        forever = await unlimited.api.create("forever")
        assert not forever.machine_user.HasField("expire_time")
        assert (await unlimited.api.validate(forever.token)).valid


async def test_names_are_unique(api: Api) -> None:
    await api.create("taken")

    second = await failure(api.create("taken"))

    assert (second.code, second.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "MACHINE_USER_NAME_TAKEN",
    )


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [
        pytest.param(0, True, id="zero-is-no-grace"),
        pytest.param(7 * 86400, True, id="seven-days"),
        pytest.param(7 * 86400 + 1, False, id="over-seven-days"),
        pytest.param(-1, False, id="negative"),
    ],
)
async def test_grace_periods_are_at_most_seven_days(api: Api, seconds: int, ok: bool) -> None:
    created = await api.create("graced")

    call = api.rotate(created.machine_user.machine_user_id, grace_seconds=seconds)

    if ok:
        await call
    else:
        refused = await failure(call)
        assert (refused.code, refused.metadata["field"]) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "grace_period",
        )


async def _admin_call(api: Api, rpc: str, machine_user_id: str, by: Identity | None) -> object:
    if rpc == "CreateMachineUser":
        return await api.create("intruder", by=by)
    if rpc == "GetMachineUser":
        return await api.get(machine_user_id, by=by)
    if rpc == "ListMachineUsers":
        return await api.list(by=by)
    if rpc == "DeleteMachineUser":
        await api.delete(machine_user_id, by=by)
        return None
    if rpc == "UpdateMachineUser":
        change = machineusers_pb2.MachineUser(machine_user_id=machine_user_id, description="x")
        return await api.update(change, by=by)
    return await api.rotate(machine_user_id, by=by)


ADMIN_RPCS = [
    "CreateMachineUser",
    "GetMachineUser",
    "ListMachineUsers",
    "DeleteMachineUser",
    "RotateMachineUserToken",
    "UpdateMachineUser",
]


@pytest.mark.parametrize("rpc", ADMIN_RPCS)
@pytest.mark.parametrize(
    ("by", "code", "reason"),
    [
        pytest.param(None, grpc.StatusCode.UNAUTHENTICATED, "AUTHENTICATION_REQUIRED", id="anon"),
        pytest.param(ALICE, grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED", id="non-admin"),
        pytest.param(MACHINE, grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED", id="machine"),
    ],
)
async def test_admin_rpcs_refuse_everyone_else(
    api: Api, rpc: str, by: Identity | None, code: grpc.StatusCode, reason: str
) -> None:
    target = (await api.create(f"target-{rpc.lower()}")).machine_user.machine_user_id

    refused = await failure(_admin_call(api, rpc, target, by))

    assert (refused.code, refused.reason) == (code, reason)
    assert (await api.get(target)).machine_user_id == target, "nothing changed"


async def test_a_forged_identity_is_refused(api: Api) -> None:
    forged = (
        (IDENTITY_KEY, '{"admin":true,"email":"","kind":"machine","sub":"x"}'),
        (SIGNATURE_KEY, "0" * 64),
    )
    request = machineusers_pb2.ListMachineUsersRequest()

    refused = await failure(api.stub.ListMachineUsers(request, metadata=forged))

    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_FORGED")


async def test_a_mesh_service_acting_for_itself_is_an_admin(api: Api) -> None:
    created = await api.create("made-by-a-service", by=SERVICE)

    assert created.machine_user.creator_id == SERVICE.subject


async def test_validate_token_is_public(api: Api) -> None:
    created = await api.create("public-check")

    assert (await api.validate(created.token)).valid  # no identity at all
