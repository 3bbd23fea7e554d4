"""``tools/list`` pages: opaque cursors that any gateway replica continues.

A cursor is keyset paging on the exposed tool name: it holds the last name of the page,
so the next page starts right after it in name order whatever was added or removed in
between (no tool is repeated; one added before the cursor is seen on the next full
listing). It also names the view it was made for, so a cursor of ``/mcp/s/a`` is refused
on ``/mcp``. Nothing is kept on the gateway, so the next page can come from any replica.
On the wire it is unpadded base64url of ``{"v": 1, "after": <name>, "view": <server>}``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Sequence

import mcp.types as types

__all__ = ["InvalidCursor", "page_of"]

_VERSION = 1


class InvalidCursor(ValueError):
    """The cursor was not made by this gateway for this view."""


def page_of(
    tools: Sequence[types.Tool], cursor: str | None, *, server: str | None, size: int
) -> types.ListToolsResult:
    """The page of ``tools`` that ``cursor`` asks for, at most ``size`` of them.

    Raises:
        InvalidCursor: The cursor is malformed or was made for another view.
    """
    ordered = sorted(tools, key=lambda tool: tool.name)
    start = 0
    if cursor is not None:
        after = _decode(cursor, server)
        start = bisect.bisect_right([tool.name for tool in ordered], after)
    page = ordered[start : start + size]
    more = start + size < len(ordered)
    return types.ListToolsResult(
        tools=list(page), next_cursor=_encode(page[-1].name, server) if more else None
    )


def _encode(after: str, server: str | None) -> str:
    raw = json.dumps({"v": _VERSION, "after": after, "view": server or ""}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _decode(cursor: str, server: str | None) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
        after, version, view = fields["after"], fields["v"], fields["view"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidCursor("the cursor is not one this gateway made") from None
    if version != _VERSION or not isinstance(after, str) or not isinstance(view, str):
        raise InvalidCursor("the cursor is not one this gateway made")
    if view != (server or ""):
        raise InvalidCursor("the cursor was made for another view of the gateway")
    return after
