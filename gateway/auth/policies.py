"""A caller's permissions on MCP servers and tools, as the gateway reads them from a record.

Machine users' come with ``ValidateToken``'s answer, people's with their user record
(:mod:`~gateway.auth.machine`, :mod:`~gateway.auth.roles`); both are
``plugmesh.users.v1.Permissions``, read with the toolkit's own translation. The services
check the rules when they store them, so a record that does not read is unexpected: it
is logged and grants nothing.
"""

from __future__ import annotations

import logging

from meshkit.errors import InvalidArgument
from meshkit.permissions import Policy
from meshkit.permissions.convert import policy_from_proto
from plugmesh.users.v1 import users_pb2

__all__ = ["NO_PERMISSIONS", "policy_of"]

log = logging.getLogger(__name__)

#: Nothing allowed (no rule: the default deny).
NO_PERMISSIONS = Policy()


def policy_of(message: users_pb2.Permissions, *, field: str, owner: str) -> Policy:
    """The permissions in ``message`` (read as ``field`` of ``owner``'s record)."""
    try:
        return policy_from_proto(message, field)
    except InvalidArgument as exc:
        log.warning(
            "a record's permissions do not read; they grant nothing",
            extra={"owner": owner, "field": field, "error": str(exc)},
        )
        return NO_PERMISSIONS
