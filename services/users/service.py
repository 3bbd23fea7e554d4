"""``plugmesh.users.v1.UserService``: requests in, responses out.

Each method authorizes the caller (:mod:`services.users.access`), translates the request
into domain terms (:mod:`services.users.convert`, which validates and names the field
that is wrong), asks :class:`~services.users.core.Users`, and translates the answer back.
Errors are :mod:`meshkit.errors` exceptions; the server's interceptor turns them into
``google.rpc.Status``.
"""

from __future__ import annotations

from meshkit.errors import invalid_field
from meshkit.field_masks import updated_fields
from meshkit.grpc_types import Context
from meshkit.paging import decode_page_token, encode_page_token, page_size
from meshkit.permissions import DEFAULT_POLICY
from meshkit.permissions.convert import policy_from_proto, role_from_proto
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from services.users.access import Access
from services.users.convert import (
    decision_to_proto,
    filters_fingerprint,
    user_to_proto,
    valid_display_name,
    valid_email,
    valid_user_id,
)
from services.users.core import Users
from services.users.model import NewUser, UserChanges

__all__ = ["UPDATABLE_FIELDS", "UserServicer"]


#: The fields UpdateUser changes, by their update_mask path.
UPDATABLE_FIELDS = ("email", "display_name", "role", "permissions")
# Paths a mask may name that an update leaves alone: output-only fields, and the user_id
# that names the user (immutable).
_IGNORED_PATHS = frozenset(
    {"user_id", "create_time", "update_time", "last_login_time", "revision", "etag"}
)


class UserServicer(users_pb2_grpc.UserServiceServicer):
    """Serves the users API over :class:`~services.users.core.Users`."""

    def __init__(self, users: Users, access: Access) -> None:
        self._users = users
        self._access = access

    async def CreateUser(
        self, request: users_pb2.CreateUserRequest, context: Context
    ) -> users_pb2.CreateUserResponse:
        """Create a user; its id is generated when empty, its permissions default to the
        seed's (allow everything) when unset."""
        actor = self._access.admin(context, "CreateUser")
        if not request.HasField("user"):
            raise invalid_field("user", "is required")
        user = request.user
        new = NewUser(
            user_id=valid_user_id(user.user_id, "user.user_id") if user.user_id else "",
            email=valid_email(user.email, "user.email"),
            display_name=valid_display_name(user.display_name, "user.display_name"),
            role=role_from_proto(user.role, "user.role"),
            policy=(
                policy_from_proto(user.permissions, "user.permissions")
                if user.HasField("permissions")
                else DEFAULT_POLICY
            ),
        )
        created = await self._users.create(actor, new)
        return users_pb2.CreateUserResponse(user=user_to_proto(created))

    async def GetUser(
        self, request: users_pb2.GetUserRequest, context: Context
    ) -> users_pb2.GetUserResponse:
        """Get a user: admins any, others themselves."""
        self._access.self_or_admin(context, "GetUser", request.user_id)
        user_id = valid_user_id(request.user_id, "user_id")
        return users_pb2.GetUserResponse(user=user_to_proto(await self._users.get(user_id)))

    async def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: Context
    ) -> users_pb2.ListUsersResponse:
        """List users newest first, a page at a time, filtered by role and email."""
        self._access.admin(context, "ListUsers")
        size = page_size(request.page_size)
        role = role_from_proto(request.role, "role") if request.role else None
        email = request.email.strip() or None
        fingerprint = filters_fingerprint(role, email)
        before = decode_page_token(request.page_token, fingerprint)
        users, more = await self._users.page(role=role, email=email, before_seq=before, limit=size)
        response = users_pb2.ListUsersResponse(users=[user_to_proto(user) for user in users])
        if more and users:
            response.next_page_token = encode_page_token(users[-1].seq, fingerprint)
        return response

    async def UpdateUser(
        self, request: users_pb2.UpdateUserRequest, context: Context
    ) -> users_pb2.UpdateUserResponse:
        """Update the fields the mask names (or, without one, those populated)."""
        actor = self._access.admin(context, "UpdateUser")
        if not request.HasField("user"):
            raise invalid_field("user", "is required")
        user = request.user
        user_id = valid_user_id(user.user_id, "user.user_id")
        paths = _paths(request)
        changes = UserChanges(
            email=valid_email(user.email, "user.email") if "email" in paths else None,
            display_name=(
                valid_display_name(user.display_name, "user.display_name")
                if "display_name" in paths
                else None
            ),
            role=role_from_proto(user.role, "user.role") if "role" in paths else None,
            policy=(
                policy_from_proto(user.permissions, "user.permissions")
                if "permissions" in paths
                else None
            ),
        )
        updated = await self._users.update(actor, user_id, changes, etag=user.etag)
        return users_pb2.UpdateUserResponse(user=user_to_proto(updated))

    async def DeleteUser(
        self, request: users_pb2.DeleteUserRequest, context: Context
    ) -> users_pb2.DeleteUserResponse:
        """Delete a user, unless it is the last admin."""
        actor = self._access.admin(context, "DeleteUser")
        user_id = valid_user_id(request.user_id, "user_id")
        await self._users.delete(
            actor, user_id, etag=request.etag, allow_missing=request.allow_missing
        )
        return users_pb2.DeleteUserResponse()

    async def UpdateUserPermissions(
        self, request: users_pb2.UpdateUserPermissionsRequest, context: Context
    ) -> users_pb2.UpdateUserPermissionsResponse:
        """Replace a user's permissions."""
        actor = self._access.admin(context, "UpdateUserPermissions")
        user_id = valid_user_id(request.user_id, "user_id")
        if not request.HasField("permissions"):
            raise invalid_field("permissions", "is required")
        policy = policy_from_proto(request.permissions, "permissions")
        updated = await self._users.set_permissions(actor, user_id, policy, etag=request.etag)
        return users_pb2.UpdateUserPermissionsResponse(user=user_to_proto(updated))

    async def CheckPermission(
        self, request: users_pb2.CheckPermissionRequest, context: Context
    ) -> users_pb2.CheckPermissionResponse:
        """Decide whether a user may call a tool, and say which rule decided."""
        self._access.self_or_admin(context, "CheckPermission", request.user_id)
        user_id = valid_user_id(request.user_id, "user_id")
        for field in ("server", "tool"):
            if not getattr(request, field):
                raise invalid_field(field, "is required")
        decision, revision = await self._users.decide(user_id, request.server, request.tool)
        return decision_to_proto(decision, revision)


def _paths(request: users_pb2.UpdateUserRequest) -> frozenset[str]:
    """The updatable fields an UpdateUser changes.

    Raises:
        InvalidArgument: The mask names a field that does not exist or cannot be updated.
    """
    user = request.user
    populated = {
        "email": bool(user.email),
        "display_name": bool(user.display_name),
        "role": user.role != users_pb2.ROLE_UNSPECIFIED,
        "permissions": user.HasField("permissions"),
    }
    return updated_fields(
        request.update_mask.paths, populated, updatable=UPDATABLE_FIELDS, ignored=_IGNORED_PATHS
    )
