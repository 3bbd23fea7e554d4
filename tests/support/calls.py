"""One call of any method with an empty request, without stubs: what access tests probe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

__all__ = ["call_empty"]


async def call_empty(
    channel: grpc.aio.Channel,
    path: str,
    *,
    server_streaming: bool = False,
    metadata: Sequence[tuple[str, str]] = (),
    timeout_seconds: float = 2.0,
) -> grpc.aio.AioRpcError | None:
    """Call ``path`` on ``channel`` with an empty request (of a server-streaming method,
    up to its first answer): the error it ended in, or None."""
    raw: Any = channel  # raw bytes in, raw bytes out: no stubs
    try:
        if server_streaming:
            call = raw.unary_stream(path)(b"", metadata=metadata, timeout=timeout_seconds)
            try:
                async for _ in call:
                    break
            finally:
                call.cancel()
        else:
            await raw.unary_unary(path)(b"", metadata=metadata, timeout=timeout_seconds)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None
