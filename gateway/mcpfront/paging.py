"""``tools/list`` pages: opaque cursors that any gateway replica continues.

A cursor is keyset paging on the exposed tool name: it holds the last name of the page,
so the next page starts right after it in name order whatever was added or removed in
between (no tool is repeated; one added before the cursor is seen on the next full
listing). It also names the view it was made for, so a cursor of ``/mcp/s/a`` is refused
on ``/mcp``. Nothing is kept on the gateway, so the next page can come from any replica.
It is the toolkit's page token (:mod:`meshkit.paging`) with the name as the position and
the view as the filter.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import mcp.types as types

from meshkit.errors import InvalidArgument
from meshkit.paging import OtherFilters, decode_name_token, encode_page_token, filters_digest

__all__ = ["InvalidCursor", "page_of"]


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
    return encode_page_token(after, filters_digest(server or ""))


def _decode(cursor: str, server: str | None) -> str:
    try:
        after = decode_name_token(cursor, filters_digest(server or ""))
    except OtherFilters:
        raise InvalidCursor("the cursor was made for another view of the gateway") from None
    except InvalidArgument:
        raise InvalidCursor("the cursor is not one this gateway made") from None
    if after is None:
        raise InvalidCursor("the cursor is not one this gateway made")
    return after
