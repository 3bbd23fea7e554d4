"""``plugmesh.machineusers.v1.MachineUserService``: requests in, responses out.

Each admin method authorizes the caller (:mod:`services.machineusers.access`), turns
the request into domain terms (:mod:`services.machineusers.convert`, which names the
field that is wrong), asks :class:`~services.machineusers.core.MachineUsers`, and turns
the answer back. ``CheckMachineUserPermission`` is open to admins and to the machine
user itself. ``ValidateToken`` is public and answers ``valid: false`` with a reason
for any bad token instead of failing. Errors are :mod:`meshkit.errors` exceptions; the
server's interceptor turns them into ``google.rpc.Status``.
"""

from __future__ import annotations

from meshkit.errors import invalid_field
from meshkit.field_masks import updated_fields
from meshkit.grpc_types import Context
from meshkit.paging import decode_page_token, encode_page_token, page_size
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2
from services.machineusers.access import Access
from services.machineusers.convert import (
    changes_of,
    decision_to_proto,
    duration,
    machine_user_to_proto,
    new_machine_user,
    validation_to_proto,
)
from services.machineusers.core import MachineUsers
from services.machineusers.model import MAX_GRACE

__all__ = ["UPDATABLE_FIELDS", "MachineUserServicer"]


_MAX_ID_LENGTH = 64
#: The fields UpdateMachineUser changes, by their update_mask path.
UPDATABLE_FIELDS = ("name", "description", "role", "permissions")
# Paths of fields an update cannot change: the id (it names the machine user), the expiry
# (fixed at creation; INPUT_ONLY ttl with it), and the output-only ones. Named in a mask,
# they are refused rather than silently ignored, so a caller never believes they changed.
_FIXED_PATHS = frozenset(
    {
        "machine_user_id",
        "expire_time",
        "ttl",
        "token_info",
        "create_time",
        "last_used_time",
        "creator_id",
        "etag",
    }
)


class MachineUserServicer(machineusers_pb2_grpc.MachineUserServiceServicer):
    """Serves the machine-users API over :class:`~services.machineusers.core.MachineUsers`."""

    def __init__(self, machine_users: MachineUsers, access: Access) -> None:
        self._machine_users = machine_users
        self._access = access

    async def CreateMachineUser(
        self, request: machineusers_pb2.CreateMachineUserRequest, context: Context
    ) -> machineusers_pb2.CreateMachineUserResponse:
        """Create a machine user; the response carries its token, the only time it is shown."""
        actor = self._access.admin(context, "CreateMachineUser")
        if not request.HasField("machine_user"):
            raise invalid_field("machine_user", "is required")
        new = new_machine_user(request.machine_user, "machine_user")
        user, token = await self._machine_users.create(actor, new)
        return machineusers_pb2.CreateMachineUserResponse(
            machine_user=machine_user_to_proto(user), token=token
        )

    async def GetMachineUser(
        self, request: machineusers_pb2.GetMachineUserRequest, context: Context
    ) -> machineusers_pb2.GetMachineUserResponse:
        """Get a machine user, without any secret."""
        self._access.admin(context, "GetMachineUser")
        user = await self._machine_users.get(_valid_id(request.machine_user_id))
        return machineusers_pb2.GetMachineUserResponse(machine_user=machine_user_to_proto(user))

    async def ListMachineUsers(
        self, request: machineusers_pb2.ListMachineUsersRequest, context: Context
    ) -> machineusers_pb2.ListMachineUsersResponse:
        """List machine users newest first, a page at a time, without any secret."""
        self._access.admin(context, "ListMachineUsers")
        size = page_size(request.page_size)
        before = decode_page_token(request.page_token)
        users, more = await self._machine_users.page(before_seq=before, limit=size)
        response = machineusers_pb2.ListMachineUsersResponse(
            machine_users=[machine_user_to_proto(user) for user in users]
        )
        if more and users:
            response.next_page_token = encode_page_token(users[-1].seq)
        return response

    async def UpdateMachineUser(
        self, request: machineusers_pb2.UpdateMachineUserRequest, context: Context
    ) -> machineusers_pb2.UpdateMachineUserResponse:
        """Update the fields the mask names (or, without one, those populated)."""
        actor = self._access.admin(context, "UpdateMachineUser")
        if not request.HasField("machine_user"):
            raise invalid_field("machine_user", "is required")
        message = request.machine_user
        machine_user_id = _valid_id(message.machine_user_id, "machine_user.machine_user_id")
        changes = changes_of(message, _paths(request), "machine_user")
        updated = await self._machine_users.update(
            actor, machine_user_id, changes, etag=message.etag
        )
        return machineusers_pb2.UpdateMachineUserResponse(
            machine_user=machine_user_to_proto(updated)
        )

    async def DeleteMachineUser(
        self, request: machineusers_pb2.DeleteMachineUserRequest, context: Context
    ) -> machineusers_pb2.DeleteMachineUserResponse:
        """Delete a machine user; its tokens stop working at once."""
        actor = self._access.admin(context, "DeleteMachineUser")
        await self._machine_users.delete(
            actor, _valid_id(request.machine_user_id), allow_missing=request.allow_missing
        )
        return machineusers_pb2.DeleteMachineUserResponse()

    async def RotateMachineUserToken(
        self, request: machineusers_pb2.RotateMachineUserTokenRequest, context: Context
    ) -> machineusers_pb2.RotateMachineUserTokenResponse:
        """Issue a new token; the old one works on for the grace period, if one is given."""
        actor = self._access.admin(context, "RotateMachineUserToken")
        machine_user_id = _valid_id(request.machine_user_id)
        grace = None
        period = request.grace_period
        if request.HasField("grace_period") and (period.seconds or period.nanos):
            grace = duration(request.grace_period, "grace_period")
            if grace > MAX_GRACE:
                raise invalid_field("grace_period", "must be at most 7 days")
        rotation = await self._machine_users.rotate(actor, machine_user_id, grace=grace)
        return machineusers_pb2.RotateMachineUserTokenResponse(
            machine_user=machine_user_to_proto(rotation.machine_user), token=rotation.token
        )

    async def CheckMachineUserPermission(
        self, request: machineusers_pb2.CheckMachineUserPermissionRequest, context: Context
    ) -> machineusers_pb2.CheckMachineUserPermissionResponse:
        """Decide whether a machine user may call a tool, and say which rule decided."""
        self._access.self_or_admin(context, "CheckMachineUserPermission", request.machine_user_id)
        machine_user_id = _valid_id(request.machine_user_id)
        for field in ("server", "tool"):
            if not getattr(request, field):
                raise invalid_field(field, "is required")
        decision = await self._machine_users.decide(machine_user_id, request.server, request.tool)
        return decision_to_proto(decision)

    async def ValidateToken(
        self, request: machineusers_pb2.ValidateTokenRequest, context: Context
    ) -> machineusers_pb2.ValidateTokenResponse:
        """Say whether a token is valid and whose it is (valid false with a reason if not)."""
        return validation_to_proto(await self._machine_users.validate(request.token))


def _valid_id(value: str, field: str = "machine_user_id") -> str:
    if not value:
        raise invalid_field(field, "is required")
    if len(value) > _MAX_ID_LENGTH or not value.isprintable() or "/" in value:
        raise invalid_field(field, "is not a machine user id")
    return value


def _paths(request: machineusers_pb2.UpdateMachineUserRequest) -> frozenset[str]:
    """The updatable fields an UpdateMachineUser changes.

    Raises:
        InvalidArgument: The mask names a field that does not exist or cannot be updated.
    """
    message = request.machine_user
    populated = {
        "name": bool(message.name),
        "description": bool(message.description),
        "role": message.role != users_pb2.ROLE_UNSPECIFIED,
        "permissions": message.HasField("permissions"),
    }
    return updated_fields(
        request.update_mask.paths, populated, updatable=UPDATABLE_FIELDS, fixed=_FIXED_PATHS
    )
