"""Who may call what: authorization with the identity the gateway verified.

The gateway signs the caller's identity into the call's metadata
(:mod:`meshkit.identity`). With it:

- no identity (anonymous, or no mesh secret configured): UNAUTHENTICATED, on every RPC;
- an admin may call everything. A caller is an admin when the gateway says so (the
  identity's ``admin`` flag: an admin machine user, or a person whose token carries the
  admin claim), when it is a mesh service calling for itself (``kind=service``), or
  when it is a person whose own user record has ROLE_ADMIN, so the role kept here is
  what makes a human an admin of the API;
- anyone else may get their own user and check their own permissions (the identity is
  a person whose subject is the user id): PERMISSION_DENIED for the rest.

Authorization comes before existence: a caller who may not read a user learns nothing
about whether it exists.
"""

from __future__ import annotations

from meshkit.errors import PermissionDenied, Unauthenticated
from meshkit.grpc_types import Context
from meshkit.identity import Identity, PrincipalKind, from_metadata
from services.users.core import Users
from services.users.model import Actor, ActorKind, Role

__all__ = ["Access", "actor_of"]


_KINDS = {
    PrincipalKind.USER: ActorKind.USER,
    PrincipalKind.MACHINE: ActorKind.MACHINE,
    PrincipalKind.SERVICE: ActorKind.SERVICE,
}


def actor_of(identity: Identity) -> Actor:
    """The actor events record for ``identity``."""
    return Actor(_KINDS[identity.kind], identity.subject, identity.email)


class Access:
    """Checks callers against the rules above.

    Args:
        signing_key: The key identities are signed with; None lets nobody in.
        users: Where a person's role is looked up.
    """

    def __init__(self, signing_key: bytes | None, users: Users) -> None:
        self._key = signing_key
        self._users = users

    def identity(self, context: Context, rpc: str) -> Identity:
        """The verified caller.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
        """
        identity = from_metadata(context.invocation_metadata(), self._key)
        if identity is None:
            raise Unauthenticated(
                f"{rpc} needs an authenticated caller", reason="AUTHENTICATION_REQUIRED"
            )
        return identity

    async def is_admin(self, identity: Identity) -> bool:
        """Whether ``identity`` has admin rights on the users API."""
        if identity.admin or identity.kind is PrincipalKind.SERVICE:
            return True
        if identity.kind is not PrincipalKind.USER:
            return False
        record = await self._users.find(identity.subject)
        return record is not None and record.role is Role.ADMIN

    async def admin(self, context: Context, rpc: str) -> Actor:
        """The acting admin.

        Raises:
            Unauthenticated: The caller is anonymous.
            PermissionDenied: The caller is not an admin.
        """
        identity = self.identity(context, rpc)
        if not await self.is_admin(identity):
            raise PermissionDenied(
                f"{rpc} is for admins only", reason="ADMIN_REQUIRED", metadata={"rpc": rpc}
            )
        return actor_of(identity)

    async def self_or_admin(self, context: Context, rpc: str, user_id: str) -> Actor:
        """The caller, when it is the user ``user_id`` or an admin.

        Raises:
            Unauthenticated: The caller is anonymous.
            PermissionDenied: The caller is someone else and not an admin.
        """
        identity = self.identity(context, rpc)
        if identity.kind is PrincipalKind.USER and identity.subject == user_id:
            return actor_of(identity)
        if not await self.is_admin(identity):
            raise PermissionDenied(
                f"{rpc}: only admins may act on other users than themselves",
                reason="NOT_SELF",
                metadata={"rpc": rpc, "user_id": user_id},
            )
        return actor_of(identity)
