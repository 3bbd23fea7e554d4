"""ListMachineUsers page tokens: keyset paging on the creation sequence, opaque to callers.

A token holds the sequence number of the last machine user of its page, so the next page
starts right after it whatever was created or deleted meanwhile. On the wire it is
unpadded base64url of ``{"v": 1, "after": <seq>}``.
"""

from __future__ import annotations

import base64
import binascii
import json

from services.users.convert import invalid

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "decode_token", "encode_token", "page_size"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1


def page_size(requested: int) -> int:
    """The page size to use: 50 for 0, at most 1000.

    Raises:
        InvalidArgument: ``requested`` is negative.
    """
    if requested < 0:
        raise invalid("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(after_seq: int) -> str:
    """The token of the page after the machine user with sequence number ``after_seq``."""
    raw = json.dumps({"v": _VERSION, "after": after_seq}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_token(token: str) -> int | None:
    """The sequence number a token continues after; None for no token.

    Raises:
        InvalidArgument: The token was not issued by this service.
    """
    if not token:
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, version = fields["after"], fields["v"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid("page_token", "is not a token this service issued") from None
    if version != _VERSION or not isinstance(after, int) or isinstance(after, bool):
        raise invalid("page_token", "is not a token this service issued")
    return after
