"""Who may do what with the audit log, decided from the identity the gateway verified.

- Reading (List, Get): admins read every entry; any other authenticated caller reads
  the entries about themself, whose actor is the caller or whose resource is the
  caller's own (``users/{id}``, ``machine-users/{id}``). Other entries look as if they
  did not exist.
- Writing (Create): admins, and mesh services acting on their own behalf.
- Export and Verify: admins.

An anonymous caller is UNAUTHENTICATED everywhere: every method needs an identity. An
admin is a caller whose signed identity says so; a mesh service acting for itself may
append entries but reads, like anyone else, only what is about itself (ARCHITECTURE.md,
"Authorization").
"""

from __future__ import annotations

from meshkit.grpc_types import Context
from meshkit.identity import Identity, PrincipalKind, caller, is_admin, require_admin
from services.audit.model import Actor, ActorType, Visibility

__all__ = ["Access", "actor_of"]

_ACTOR_TYPES = {
    PrincipalKind.USER: ActorType.USER,
    PrincipalKind.MACHINE: ActorType.MACHINE,
    PrincipalKind.SERVICE: ActorType.SERVICE,
}
_OWN_RESOURCE = {
    PrincipalKind.USER: "users/{}",
    PrincipalKind.MACHINE: "machine-users/{}",
}


def actor_of(identity: Identity) -> Actor:
    """The actor a caller is, for entries it writes without naming one."""
    return Actor(_ACTOR_TYPES[identity.kind], identity.subject, identity.email)


class Access:
    """Checks callers against the rules above.

    Args:
        signing_key: The key identities are signed with; None lets nobody in.
    """

    def __init__(self, signing_key: bytes | None) -> None:
        self._key = signing_key

    def reader(self, context: Context) -> Visibility:
        """Which entries the caller may read.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
        """
        return _visibility(caller(context, self._key, "reading the audit log"))

    def writer(self, context: Context) -> Identity:
        """The caller, when it may append entries: an admin or a mesh service.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
            PermissionDenied: The caller is neither.
        """
        action = "writing audit entries"
        return require_admin(caller(context, self._key, action), action, services=True)

    def admin(self, context: Context, action: str) -> Identity:
        """The caller of ``action``, when it is an admin.

        Raises:
            Unauthenticated: The caller is anonymous, or its identity is forged.
            PermissionDenied: The caller is not an admin.
        """
        return require_admin(caller(context, self._key, action), action)


def _visibility(identity: Identity) -> Visibility:
    if is_admin(identity):
        return Visibility(everything=True)
    own = _OWN_RESOURCE.get(identity.kind)
    return Visibility(
        actor=Actor(_ACTOR_TYPES[identity.kind], identity.subject),
        resources=(own.format(identity.subject),) if own else (),
    )
