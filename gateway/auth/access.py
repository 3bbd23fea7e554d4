"""Who may call an RPC through the gateway, read from its ``(plugmesh.options.v1.access)``.

| access | who |
|---|---|
| PUBLIC | anyone; a credential, when presented, must still be valid |
| AUTHENTICATED, or not declared | any caller with a valid machine token or JWT |
| ADMIN | admins: admin machine users, people with ROLE_ADMIN, mesh services |
| INTERNAL | only mesh services (the registration secret); never clients |
"""

from __future__ import annotations

from typing import TypeAlias

from google.protobuf import descriptor

from gateway.auth.errors import AuthFailed, Forbidden
from meshkit.access import declared_access
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2
from plugmesh.options.v1 import options_pb2

__all__ = ["Access", "access_of", "authorize", "needs_credentials"]

Access: TypeAlias = options_pb2.Access.ValueType


def access_of(rpc: descriptor.MethodDescriptor) -> Access:
    """The RPC's declared access (:func:`meshkit.access.declared_access`); AUTHENTICATED
    when it declares none the toolkit knows: the gateway serves plugins of any language,
    which may not declare it, where the registry's own contract is refused instead."""
    declared = declared_access(rpc)
    return options_pb2.ACCESS_AUTHENTICATED if declared is None else declared


def needs_credentials(access: Access) -> bool:
    """Whether an anonymous caller is refused."""
    return access != options_pb2.ACCESS_PUBLIC


def authorize(rpc: descriptor.MethodDescriptor, identity: Identity | None) -> None:
    """Check ``identity`` (None: anonymous) against the access of ``rpc``.

    Raises:
        AuthFailed: The RPC needs a caller and there is none (MISSING_CREDENTIALS).
        Forbidden: The caller may not call it.
    """
    access = access_of(rpc)
    name = rpc.full_name
    service = identity is not None and identity.kind is PrincipalKind.SERVICE
    if access == options_pb2.ACCESS_INTERNAL:
        if not service:
            raise Forbidden(
                f"{name} is internal to the mesh; clients cannot call it",
                reason="INTERNAL_METHOD",
            )
        return
    if identity is None:
        if needs_credentials(access):
            raise AuthFailed(
                f"{name} needs a bearer token (Authorization: Bearer <token>)",
                failure=auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS,
            )
        return
    if access == options_pb2.ACCESS_ADMIN and not (identity.admin or service):
        raise Forbidden(f"{name} is for admins only", reason="ADMIN_REQUIRED")
