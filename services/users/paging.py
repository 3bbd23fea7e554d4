"""ListUsers page tokens: opaque to callers, stable under inserts and deletes.

A token is keyset paging: it holds the sequence number of the last user of the page (a
user's position in creation order, never reused), so the next page starts right after
it whatever was created or deleted meanwhile: no user is skipped or repeated. It also
holds a fingerprint of the filters, so a token used with other filters is refused.
On the wire it is unpadded base64url of ``{"v": 1, "after": <seq>, "q": <fingerprint>}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from meshkit.errors import InvalidArgument
from services.users.model import Role, email_key

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "decode_token",
    "encode_token",
    "filters_fingerprint",
    "page_size",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1


def filters_fingerprint(role: Role | None, email: str | None) -> str:
    """A short digest of the filters of a listing."""
    key = f"{role.value if role else ''}\n{email_key(email or '') or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def page_size(requested: int) -> int:
    """The page size to use: 50 for 0, at most 1000.

    Raises:
        InvalidArgument: ``requested`` is negative.
    """
    if requested < 0:
        raise _invalid("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(after_seq: int, fingerprint: str) -> str:
    """The token of the page after the user with sequence number ``after_seq``."""
    raw = json.dumps({"v": _VERSION, "after": after_seq, "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_token(token: str, fingerprint: str) -> int | None:
    """The sequence number a token continues after; None for no token.

    Raises:
        InvalidArgument: The token is malformed or was made for other filters.
    """
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
        after, version, query = fields["after"], fields["v"], fields["q"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _invalid("page_token", "is not a token this service issued") from None
    if version != _VERSION or not isinstance(after, int) or isinstance(after, bool):
        raise _invalid("page_token", "is not a token this service issued")
    if query != fingerprint:
        raise _invalid("page_token", "was issued for other filters (role, email)")
    return after


def _invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field} {message}", reason="INVALID_FIELD", metadata={"field": field})
