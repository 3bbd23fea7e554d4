"""Who may call what: authorization with the identity the gateway verified.

The gateway signs the caller's identity into the call's metadata
(:mod:`meshkit.identity`). With it:

- no identity (anonymous, or no mesh secret configured): UNAUTHENTICATED, on every RPC;
- an admin may call everything. A caller is an admin when its signed identity says so
  (the gateway sets the flag for an admin machine user, a person whose user record has
  ROLE_ADMIN, or whose token carries the admin claim), or when it is a mesh service
  calling for itself (``kind=service``: the gateway looking a person's role up). The
  plugin never looks a caller's role up itself: see ARCHITECTURE.md, "Authorization";
- anyone else may get their own user and check their own permissions (the identity is
  a person whose subject is the user id): PERMISSION_DENIED for the rest.

Authorization comes before existence: a caller who may not read a user learns nothing
about whether it exists.
"""

from __future__ import annotations

from meshkit.errors import PermissionDenied
from meshkit.grpc_types import Context
from meshkit.identity import Identity, PrincipalKind, authenticated, from_metadata

__all__ = ["Access"]


class Access:
    """Checks callers against the rules above.

    Args:
        signing_key: The key identities are signed with; None lets nobody in.
    """

    def __init__(self, signing_key: bytes | None) -> None:
        self._key = signing_key

    def admin(self, context: Context, rpc: str) -> Identity:
        """The acting admin.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
            PermissionDenied: The caller is not an admin.
        """
        identity = self._caller(context, rpc)
        if not _is_admin(identity):
            raise PermissionDenied(
                f"{rpc} is for admins only", reason="ADMIN_REQUIRED", metadata={"rpc": rpc}
            )
        return identity

    def self_or_admin(self, context: Context, rpc: str, user_id: str) -> Identity:
        """The caller, when it is the user ``user_id`` or an admin.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
            PermissionDenied: The caller is someone else and not an admin.
        """
        identity = self._caller(context, rpc)
        if identity.kind is PrincipalKind.USER and identity.subject == user_id:
            return identity
        if not _is_admin(identity):
            raise PermissionDenied(
                f"{rpc}: only admins may act on other users than themselves",
                reason="NOT_SELF",
                metadata={"rpc": rpc, "user_id": user_id},
            )
        return identity

    def _caller(self, context: Context, rpc: str) -> Identity:
        return authenticated(from_metadata(context.invocation_metadata(), self._key), rpc)


def _is_admin(identity: Identity) -> bool:
    return identity.admin or identity.kind is PrincipalKind.SERVICE
