"""Server-Sent Events over ASGI: one response that stays open and sends frames as they come.

:func:`serve_stream` sends the frames an async iterator yields, a comment line every
``heartbeat_seconds`` so that proxies and the browser know the stream is alive, and
ends when the iterator does, when the client goes away, or when ``closing`` is set (the
gateway is stopping). A failure of the iterator ends the stream with an ``error`` frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from gateway.http.asgi import Receive, Send

__all__ = ["frame", "serve_stream"]

log = logging.getLogger(__name__)

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]
_HEARTBEAT = b": alive\n\n"
_END = object()


def frame(event: str, data: Any) -> bytes:
    """One SSE frame: ``event: <event>`` and ``data`` as one line of JSON."""
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


async def serve_stream(
    receive: Receive,
    send: Send,
    frames: AsyncIterator[bytes],
    *,
    closing: asyncio.Event,
    heartbeat_seconds: float = 15.0,
) -> int:
    """Answer 200 with ``text/event-stream`` and send ``frames`` until the end; returns 200."""
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=16)
    tasks = [
        asyncio.ensure_future(_produce(frames, queue)),
        asyncio.ensure_future(_disconnected(receive)),
        asyncio.ensure_future(closing.wait()),
    ]
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {getting, *tasks[1:]},
                timeout=heartbeat_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getting not in done:
                getting.cancel()
                if done:
                    break  # the client left or the gateway stops
                await send({"type": "http.response.body", "body": _HEARTBEAT, "more_body": True})
                continue
            item = getting.result()
            if item is _END:
                break
            assert isinstance(item, bytes)
            await send({"type": "http.response.body", "body": item, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client is gone: nothing more to say to it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return 200


async def _produce(frames: AsyncIterator[bytes], queue: asyncio.Queue[object]) -> None:
    try:
        async for item in frames:
            await queue.put(item)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("a console feed failed")
        await queue.put(frame("error", {"message": str(exc) or type(exc).__name__}))
    finally:
        closer = getattr(frames, "aclose", None)
        if closer is not None:
            await closer()
    await queue.put(_END)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
