"""Who may manage machine users: admins, with the identity the gateway verified.

The gateway signs the caller's identity into the call's metadata
(:mod:`meshkit.identity`); the gateway also decides, from the protos' access options,
that only admins reach the admin RPCs, and this module checks it again, since a plugin
can be called without the gateway. An admin is a caller whose signed identity carries
the admin flag (an admin machine user, or a person the gateway found to be an admin) or
a mesh service acting for itself (``plugmesh up``'s bootstrap); see ARCHITECTURE.md,
"Authorization". ``ValidateToken`` is public and needs no identity.
"""

from __future__ import annotations

from meshkit.grpc_types import Context
from meshkit.identity import Identity, caller, require_admin

__all__ = ["Access"]


class Access:
    """Checks callers.

    Args:
        signing_key: The key identities are signed with; None lets nobody in.
    """

    def __init__(self, signing_key: bytes | None) -> None:
        self._key = signing_key

    def admin(self, context: Context, rpc: str) -> Identity:
        """The acting admin.

        Raises:
            Unauthenticated: The caller is anonymous or its identity is forged.
            PermissionDenied: The caller is not an admin.
        """
        return require_admin(caller(context, self._key, rpc), rpc, services=True)
