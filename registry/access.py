"""Who may call the registry, by the access each RPC of its contract declares.

The toolkit's :class:`~meshkit.access.AccessInterceptor` asks :class:`RegistryAccess`
before any servicer code runs; the servicer itself checks no caller (only, with mutual
TLS, that a certificate names the service it registers: that needs the request).

| access | admitted |
|---|---|
| INTERNAL | mesh members: the registration secret in ``plugmesh-registration-secret`` |
| AUTHENTICATED | mesh members, or a caller the gateway signed for (:mod:`meshkit.identity`) |
| ADMIN | mesh members, or a signed admin or mesh service |
| PUBLIC | anyone; a secret or an identity that is sent must still be right |

A secret that is sent is checked whatever else comes with it. Without a secret (a
development setup) nothing can be checked and every call is admitted.
"""

from __future__ import annotations

import hmac

from meshkit.access import Access, Metadata
from meshkit.errors import Unauthenticated
from meshkit.identity import from_metadata, require_admin, signing_key
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.options.v1 import options_pb2

__all__ = ["RegistryAccess"]


class RegistryAccess:
    """The registry's :class:`~meshkit.access.AccessPolicy`.

    Args:
        registration_secret: The mesh's secret; ``None`` admits every call.
    """

    def __init__(self, registration_secret: str | None) -> None:
        self._secret = registration_secret
        self._signing_key = signing_key(registration_secret)

    def admit(self, access: Access, method: str, metadata: Metadata) -> None:
        """Return when the caller may call ``method`` of ``access``.

        Raises:
            Unauthenticated: A secret is missing or wrong (``REGISTRATION_SECRET_MISSING``,
                ``REGISTRATION_SECRET_INVALID``), an identity is forged or malformed, or
                the caller is anonymous (``AUTHENTICATION_REQUIRED``).
            PermissionDenied: An ADMIN method's caller is not an admin (``ADMIN_REQUIRED``).
        """
        if self._secret is None:
            return
        sent = _sent_secret(metadata)
        if sent is not None or access == options_pb2.ACCESS_INTERNAL:
            _check_secret(sent or "", self._secret)
            return
        identity = from_metadata(metadata, self._signing_key)
        if access == options_pb2.ACCESS_PUBLIC:
            return
        if identity is None:
            raise Unauthenticated(
                "the registry answers mesh members (the registration secret) and callers"
                " the gateway signed for",
                reason="AUTHENTICATION_REQUIRED",
            )
        if access == options_pb2.ACCESS_ADMIN:
            require_admin(identity, method, services=True)


def _check_secret(sent: str, secret: str) -> None:
    if not sent:
        raise Unauthenticated(
            f"the registration secret is missing from the {SECRET_METADATA_KEY!r} metadata",
            reason="REGISTRATION_SECRET_MISSING",
        )
    if not hmac.compare_digest(sent.encode(), secret.encode()):
        raise Unauthenticated(
            "the registration secret is wrong", reason="REGISTRATION_SECRET_INVALID"
        )


def _sent_secret(metadata: Metadata) -> str | None:
    """The secret the caller sent (the last one, when sent twice); None when none was."""
    sent: str | None = None
    for key, value in metadata:
        if key == SECRET_METADATA_KEY:
            sent = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return sent
