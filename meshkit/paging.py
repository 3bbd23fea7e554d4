"""Page sizes and page tokens of List methods (AIP-158), one codec for every service.

Listings are keyset pages over a position that only grows and is never reused (a
sequence number): newest first, a page holds the items below the position its token
names, so the next page starts right after the last item of the previous one, whatever
was created or deleted meanwhile: no item is skipped or returned twice. A token also
holds a digest of the request's filters (:func:`filters_digest`), so a token sent with
other filters is refused, as AIP-158 asks. It carries no authority: the caller's rights
and the filters are applied to every page.

A listing ordered by name instead (the MCP front's ``tools/list``) uses the same codec with
the last name as the position (:func:`decode_name_token`).

On the wire a token is unpadded base64url of ``{"v": 1, "after": <position>, "q":
<digest>}``; callers treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from meshkit.errors import InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "OtherFilters",
    "decode_name_token",
    "decode_page_token",
    "encode_page_token",
    "filters_digest",
    "page_size",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The page size to use: ``default`` for 0, at most ``maximum``.

    Raises:
        InvalidArgument: ``requested`` is negative.
    """
    if requested < 0:
        raise _invalid("page_size", "page_size must not be negative")
    return min(requested or default, maximum)


def filters_digest(*filters: str) -> str:
    """A short digest of a listing's filters, in a fixed order; "" for each one unset."""
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:16]


def encode_page_token(after: int | str, filters: str = "") -> str:
    """The token of the page after the item at position ``after`` (a sequence number, or
    a name for listings ordered by name), for ``filters`` (a :func:`filters_digest`)."""
    raw = json.dumps({"v": _VERSION, "after": after, "q": filters}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_page_token(token: str, filters: str = "") -> int | None:
    """The position a token continues after; None for no token (the first page).

    Raises:
        InvalidArgument: The token was not issued by this codec, or for other filters.
    """
    after = _decode(token, filters)
    if after is not None and (type(after) is not int or after < 1):
        raise _invalid("page_token", "page_token is not a token this service issued")
    return after


def decode_name_token(token: str, filters: str = "") -> str | None:
    """The name a token of a listing ordered by name continues after; None for no token.

    Raises:
        InvalidArgument: The token was not issued by this codec, or for other filters.
    """
    after = _decode(token, filters)
    if after is not None and not isinstance(after, str):
        raise _invalid("page_token", "page_token is not a token this service issued")
    return after


def _decode(token: str, filters: str) -> object:
    if not token:
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, version, issued_for = fields["after"], fields["v"], fields["q"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _invalid("page_token", "page_token is not a token this service issued") from None
    if version != _VERSION or after is None:
        raise _invalid("page_token", "page_token is not a token this service issued")
    if issued_for != filters:
        raise OtherFilters(
            "page_token was issued for other filters; send the same filters",
            reason="INVALID_FIELD",
            metadata={"field": "page_token"},
        )
    return after


class OtherFilters(InvalidArgument):
    """A well-formed page token, issued for other filters (or another view)."""


def _invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_FIELD", metadata={"field": field})
