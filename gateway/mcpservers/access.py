"""Who may manage the upstream MCP servers: admins, with the identity the gateway signed.

Every method of ``McpServerService`` is admin-only (the protos say ``ACCESS_ADMIN``, and
the gateway's guard refuses others before they get here); the service checks it again,
since its port can be called without going through the gateway's front.
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
        return require_admin(caller(context, self._key, rpc), rpc)
