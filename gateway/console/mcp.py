"""The MCP view's feed: a ``changed`` frame when the page connects and whenever the tools
the gateway serves change (:meth:`gateway.mcpfront.federation.Upstreams.add_listener`:
a server added, removed, enabled, disabled, ready or gone, here or on another replica,
whose follower applies the change); the page then reads ``/v1/mcp/servers`` again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from gateway.console.sse import frame

__all__ = ["AddListener", "change_frames"]

#: Registers a change listener; returns the call that removes it.
AddListener = Callable[[Callable[[], None]], Callable[[], None]]


async def change_frames(add_listener: AddListener) -> AsyncIterator[bytes]:
    """``changed`` now, then after every change (changes in a burst coalesce into one)."""
    changed = asyncio.Event()
    changed.set()
    remove = add_listener(changed.set)
    try:
        while True:
            await changed.wait()
            changed.clear()
            yield frame("changed", {})
    finally:
        remove()
