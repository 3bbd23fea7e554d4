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

from meshkit.grpc_types import Context
from meshkit.identity import Identity, PrincipalKind, caller, require_admin, require_self_or_admin

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
        return require_admin(caller(context, self._key, rpc), rpc, services=True)

    def self_or_admin(self, context: Context, rpc: str, user_id: str) -> Identity:
        """The caller, when it is the user ``user_id`` or an admin.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
            PermissionDenied: The caller is someone else and not an admin.
        """
        identity = caller(context, self._key, rpc)
        return require_self_or_admin(identity, rpc, PrincipalKind.USER, user_id, field="user_id")
