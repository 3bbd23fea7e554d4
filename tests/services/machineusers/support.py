"""Test support: identities, a clock the test moves, and a client that signs identities."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2

from meshkit.errors import error_info
from meshkit.identity import Identity, PrincipalKind, to_metadata
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2

SECRET = "machine-users-test-secret"

#: An admin, as the gateway asserts it.
ADMIN = Identity(PrincipalKind.MACHINE, "mu-admin", admin=True)
#: A person without admin rights.
ALICE = Identity(PrincipalKind.USER, "alice", email="alice@example.com")
#: A mesh service acting for itself (plugmesh up's bootstrap).
SERVICE = Identity(PrincipalKind.SERVICE, "plugmesh-up")


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self) -> None:
        self.time = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        """The current fake time."""
        return self.time

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.time += dt.timedelta(**delta)


class Api:
    """The machine-users API as a given caller sees it."""

    def __init__(self, stub: machineusers_pb2_grpc.MachineUserServiceAsyncStub, key: bytes):
        self.stub = stub
        self._key = key

    def metadata(self, identity: Identity | None) -> tuple[tuple[str, str], ...]:
        """The call metadata carrying ``identity`` (none for anonymous)."""
        return to_metadata(identity, self._key) if identity is not None else ()

    async def create(
        self,
        name: str,
        *,
        by: Identity | None = ADMIN,
        admin: bool = False,
        ttl_seconds: int | None = None,
        expire_time: dt.datetime | None = None,
        rules: tuple[str, ...] = (),
    ) -> machineusers_pb2.CreateMachineUserResponse:
        """CreateMachineUser."""
        user = machineusers_pb2.MachineUser(
            name=name, role=users_pb2.ROLE_ADMIN if admin else users_pb2.ROLE_USER
        )
        for pattern in rules:
            user.permissions.rules.add(effect=users_pb2.EFFECT_ALLOW, pattern=pattern)
        if ttl_seconds is not None:
            user.ttl.CopyFrom(duration_pb2.Duration(seconds=ttl_seconds))
        if expire_time is not None:
            user.expire_time.FromDatetime(expire_time)
        request = machineusers_pb2.CreateMachineUserRequest(machine_user=user)
        return await self.stub.CreateMachineUser(request, metadata=self.metadata(by))

    async def get(
        self, machine_user_id: str, *, by: Identity | None = ADMIN
    ) -> machineusers_pb2.MachineUser:
        """GetMachineUser."""
        request = machineusers_pb2.GetMachineUserRequest(machine_user_id=machine_user_id)
        return (await self.stub.GetMachineUser(request, metadata=self.metadata(by))).machine_user

    async def list(
        self, *, by: Identity | None = ADMIN, page_size: int = 0, page_token: str = ""
    ) -> machineusers_pb2.ListMachineUsersResponse:
        """ListMachineUsers."""
        request = machineusers_pb2.ListMachineUsersRequest(
            page_size=page_size, page_token=page_token
        )
        return await self.stub.ListMachineUsers(request, metadata=self.metadata(by))

    async def update(
        self,
        machine_user: machineusers_pb2.MachineUser,
        paths: tuple[str, ...] | None = None,
        *,
        by: Identity | None = ADMIN,
    ) -> machineusers_pb2.MachineUser:
        """UpdateMachineUser with ``paths`` as the mask (no mask when None)."""
        request = machineusers_pb2.UpdateMachineUserRequest(machine_user=machine_user)
        if paths is not None:
            request.update_mask.paths.extend(paths)
        response = await self.stub.UpdateMachineUser(request, metadata=self.metadata(by))
        return response.machine_user

    async def check(
        self, machine_user_id: str, server: str, tool: str, *, by: Identity | None = ADMIN
    ) -> machineusers_pb2.CheckMachineUserPermissionResponse:
        """CheckMachineUserPermission."""
        request = machineusers_pb2.CheckMachineUserPermissionRequest(
            machine_user_id=machine_user_id, server=server, tool=tool
        )
        return await self.stub.CheckMachineUserPermission(request, metadata=self.metadata(by))

    async def delete(
        self, machine_user_id: str, *, by: Identity | None = ADMIN, allow_missing: bool = False
    ) -> None:
        """DeleteMachineUser."""
        request = machineusers_pb2.DeleteMachineUserRequest(
            machine_user_id=machine_user_id, allow_missing=allow_missing
        )
        await self.stub.DeleteMachineUser(request, metadata=self.metadata(by))

    async def rotate(
        self,
        machine_user_id: str,
        *,
        by: Identity | None = ADMIN,
        grace_seconds: int | None = None,
    ) -> machineusers_pb2.RotateMachineUserTokenResponse:
        """RotateMachineUserToken."""
        request = machineusers_pb2.RotateMachineUserTokenRequest(machine_user_id=machine_user_id)
        if grace_seconds is not None:
            request.grace_period.CopyFrom(duration_pb2.Duration(seconds=grace_seconds))
        return await self.stub.RotateMachineUserToken(request, metadata=self.metadata(by))

    async def validate(self, token: str) -> machineusers_pb2.ValidateTokenResponse:
        """ValidateToken, anonymously (it is public)."""
        return await self.stub.ValidateToken(machineusers_pb2.ValidateTokenRequest(token=token))


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
