"""Page tokens of ListAuditEntries: an opaque keyset cursor on the sequence.

A token is URL-safe base64 (unpadded) of ``{"v":1,"before":<sequence>,"f":<filters>}``:
the next page holds the entries below ``before``, newest first. Sequences only grow, so
entries appended during a walk land above the first page and never shift the pages
below it: a walk returns no entry twice and skips none that existed when it began.
``f`` is a digest of the request's filters; a token sent with other filters is refused,
as the contract asks. A token carries no authority: the reader's rights and the filters
are applied to every page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from meshkit.errors import InvalidArgument
from services.audit.chain import canonical_json, format_time
from services.audit.model import EntryFilter

__all__ = ["decode_token", "encode_token", "filter_digest"]

_VERSION = 1


def filter_digest(where: EntryFilter) -> str:
    """A short digest that changes when any filter changes."""
    fields = {
        "user_id": where.user_id,
        "actor_type": where.actor_type.value,
        "action": where.action,
        "resource": where.resource,
        "outcome": where.outcome.value,
        "start_time": format_time(where.start_time) if where.start_time else "",
        "end_time": format_time(where.end_time) if where.end_time else "",
    }
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:16]


def encode_token(before_sequence: int, digest: str) -> str:
    """The token of the page below ``before_sequence`` for filters with ``digest``."""
    raw = json.dumps({"v": _VERSION, "before": before_sequence, "f": digest}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, digest: str) -> int:
    """The sequence a page token continues below.

    Raises:
        InvalidArgument: The token is malformed, or was issued for other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = json.loads(raw)
        before = fields["before"]
        issued_for = fields["f"]
        version = fields["v"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise _invalid("page_token is not a token this service issued") from exc
    if version != _VERSION or type(before) is not int or before < 1:
        raise _invalid("page_token is not a token this service issued")
    if issued_for != digest:
        raise _invalid("page_token was issued for other filters; send the same filters")
    return before


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_FIELD", metadata={"field": "page_token"})
