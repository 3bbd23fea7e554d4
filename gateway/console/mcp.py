"""The MCP view's feed: a ``changed`` frame when the page connects and whenever an
upstream server's state, last error or tools change
(:meth:`gateway.mcpfront.federation.Upstreams.add_status_listener`): a server connecting,
ready, failing and retrying, disabled, refreshed (even when it finds the same tools),
added or removed, here or on another replica, whose follower of the ``mcp.server.*``
events applies the change to this replica's servers. The page then reads
``/v1/mcp/servers`` again.

A burst of changes (a failing server goes CONNECTING then FAILING within milliseconds;
a spec applied touches every server) makes one frame: after a change the feed waits
:data:`SETTLE_SECONDS` for more before it sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from gateway.console.sse import frame

__all__ = ["SETTLE_SECONDS", "AddListener", "change_frames"]

#: Registers a change listener; returns the call that removes it.
AddListener = Callable[[Callable[[], None]], Callable[[], None]]

#: How long a change waits for the rest of its burst before the frame goes out.
SETTLE_SECONDS = 0.1


async def change_frames(
    add_listener: AddListener, *, settle_seconds: float = SETTLE_SECONDS
) -> AsyncGenerator[bytes, None]:
    """``changed`` now, then after every burst of changes."""
    changed = asyncio.Event()
    changed.set()
    remove = add_listener(changed.set)
    first = True
    try:
        while True:
            await changed.wait()
            if not first:
                await asyncio.sleep(settle_seconds)
            first = False
            changed.clear()
            yield frame("changed", {})
    finally:
        remove()
