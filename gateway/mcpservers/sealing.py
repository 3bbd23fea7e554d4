"""The secrets of upstream servers (``env`` and ``headers`` values), sealed at rest.

They must reach the upstream, so they cannot be hashed: they are encrypted with
AES-256-GCM under a key derived (HKDF-SHA256) from the mesh's registration secret, which
every gateway replica has, so a copy of the database alone does not reveal them. The
server's name is the associated data: a sealed value moved to another row does not open.
Without a registration secret nothing can be sealed, and a server with secrets is refused.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SealError", "Sealer"]

_INFO = b"plugmesh mcp server secrets v1"
_NONCE_BYTES = 12
_PREFIX = "v1:"


class SealError(ValueError):
    """Secrets cannot be sealed (no key) or a sealed value does not open."""


class Sealer:
    """Seals and opens the secrets of one server at a time.

    Args:
        registration_secret: The mesh's secret; None: nothing can be sealed.
    """

    def __init__(self, registration_secret: str | None) -> None:
        self._aead: AESGCM | None = None
        if registration_secret:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
                registration_secret.encode()
            )
            self._aead = AESGCM(key)

    @property
    def can_seal(self) -> bool:
        """Whether there is a key."""
        return self._aead is not None

    def seal(self, server: str, secrets: Mapping[str, str]) -> str:
        """``secrets`` encrypted for ``server``; "" when there are none.

        Raises:
            SealError: There are secrets but no key.
        """
        if not secrets:
            return ""
        if self._aead is None:
            raise SealError("secrets need PLUGMESH_REGISTRATION_SECRET to be stored encrypted")
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(dict(secrets), sort_keys=True).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, server.encode())
        return _PREFIX + base64.b64encode(sealed).decode()

    def open(self, server: str, sealed: str) -> dict[str, str]:
        """The secrets :meth:`seal` sealed for ``server``.

        Raises:
            SealError: No key, or the value was sealed with another key or for another
                server, or is damaged.
        """
        if not sealed:
            return {}
        if self._aead is None or not sealed.startswith(_PREFIX):
            raise SealError(f"the secrets of {server!r} cannot be opened without their key")
        raw = base64.b64decode(sealed[len(_PREFIX) :])
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], server.encode())
        except InvalidTag:
            raise SealError(
                f"the secrets of {server!r} do not open: the registration secret changed"
                " since they were stored, or the row is damaged"
            ) from None
        values = json.loads(plain)
        return {str(k): str(v) for k, v in values.items()}
