"""The callers the adversarial probes pose as, each as HTTP headers and gRPC metadata.

- ``anonymous``: no credentials at all;
- ``deleted``: the token of a machine user an admin deleted;
- ``forged``: no token, but identity metadata claiming an admin, signed with a key that
  is not the mesh's (what a client reaching the gateway, or a plugin's port, might try);
- ``plain``: a machine user who is no admin and has no permissions on tools;
- ``plain+forged``: that token, plus identity metadata claiming an admin;
- ``admin``: an admin machine user allowed every tool: the control that proves each probe
  can pass at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.support.waiting import eventually

__all__ = ["Caller", "Callers", "prepare_callers"]

#: What a caller claims in the forged metadata: an admin mesh service.
_CLAIMED = Identity(PrincipalKind.SERVICE, "registry", admin=True)
_FORGED = to_metadata(_CLAIMED, signing_key("not-the-mesh-secret") or b"")


class Caller(enum.Enum):
    """Who a probe poses as."""

    ANONYMOUS = "anonymous"
    DELETED = "deleted"
    FORGED = "forged"
    PLAIN = "plain"
    PLAIN_FORGED = "plain+forged"
    ADMIN = "admin"

    @property
    def authenticated(self) -> bool:
        """Whether the gateway should know who this caller is."""
        return self in (Caller.PLAIN, Caller.PLAIN_FORGED, Caller.ADMIN)


@dataclass
class Callers:
    """The tokens behind the callers (never printed)."""

    tokens: dict[Caller, str] = field(default_factory=dict, repr=False)

    def headers(self, caller: Caller) -> dict[str, str]:
        """HTTP headers of ``caller``."""
        headers = dict(_FORGED) if caller in (Caller.FORGED, Caller.PLAIN_FORGED) else {}
        token = self.tokens.get(caller)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def metadata(self, caller: Caller) -> tuple[tuple[str, str], ...]:
        """gRPC metadata of ``caller``."""
        return tuple((key.lower(), value) for key, value in self.headers(caller).items())


async def prepare_callers(mesh: Mesh) -> Callers:
    """Machine users for every caller; the deleted one deleted, and refused already."""
    admin = await mesh.create_machine_user("probe-admin", admin=True, permissions=_allow("*/*"))
    plain = await mesh.create_machine_user("probe-plain")
    doomed = await mesh.create_machine_user("probe-deleted", permissions=_allow("*/*"))
    deleted = await mesh.http.delete(
        f"/v1/machine-users/{doomed.machine_user.machine_user_id}",
        headers=mesh.bearer(admin.token),
    )
    assert deleted.status_code == 200, deleted.text

    async def refused() -> bool | None:
        response = await mesh.http.get("/v1/users", headers=mesh.bearer(doomed.token))
        return response.status_code == 401 or None

    await eventually(refused, timeout_seconds=10, what="the deleted machine user refused")
    return Callers(
        {
            Caller.ADMIN: admin.token,
            Caller.PLAIN: plain.token,
            Caller.PLAIN_FORGED: plain.token,
            Caller.DELETED: doomed.token,
        }
    )


def _allow(pattern: str) -> users_pb2.Permissions:
    rule = users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=pattern)
    return users_pb2.Permissions(rules=[rule])
