"""Who may do what with the audit log, decided from the caller's verified identity.

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

from meshkit.errors import PermissionDenied
from meshkit.identity import Identity, PrincipalKind, authenticated
from services.audit.model import Actor, ActorType, Visibility

__all__ = ["actor_of", "require_admin", "require_writer", "visibility_of"]

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


def visibility_of(identity: Identity | None) -> Visibility:
    """Which entries ``identity`` may read.

    Raises:
        Unauthenticated: The caller is anonymous.
    """
    caller = authenticated(identity, "reading the audit log")
    if caller.admin:
        return Visibility(everything=True)
    own = _OWN_RESOURCE.get(caller.kind)
    return Visibility(
        actor=Actor(_ACTOR_TYPES[caller.kind], caller.subject),
        resources=(own.format(caller.subject),) if own else (),
    )


def require_admin(identity: Identity | None, action: str) -> Identity:
    """Return the caller when it is an admin.

    Raises:
        Unauthenticated: The caller is anonymous.
        PermissionDenied: The caller is not an admin.
    """
    caller = authenticated(identity, action)
    if not caller.admin:
        raise PermissionDenied(
            f"{action} needs admin rights", reason="ADMIN_REQUIRED", metadata={"action": action}
        )
    return caller


def require_writer(identity: Identity | None) -> Identity:
    """Return the caller when it may append entries: an admin or a mesh service.

    Raises:
        Unauthenticated: The caller is anonymous.
        PermissionDenied: The caller is neither.
    """
    action = "writing audit entries"
    caller = authenticated(identity, action)
    if not (caller.admin or caller.kind is PrincipalKind.SERVICE):
        raise PermissionDenied(
            f"{action} needs admin rights or a service identity",
            reason="ADMIN_REQUIRED",
            metadata={"action": action},
        )
    return caller
