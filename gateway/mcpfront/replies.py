"""JSON-RPC errors the front answers itself, before the SDK reads the request (so the
request's id is unknown: ``null``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.http.asgi import Send, send_response

__all__ = ["send_error"]


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    *,
    data: Mapping[str, Any] | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    """Answer ``status`` with a JSON-RPC error body; returns ``status``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = dict(data)
    body = {"jsonrpc": "2.0", "id": None, "error": error}
    await send_response(send, status, json.dumps(body).encode(), headers=headers)
    return status
