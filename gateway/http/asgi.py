"""Small ASGI helpers: reading a bounded body, sending whole responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

from gateway.http.errors import PayloadTooLarge

__all__ = [
    "JSON",
    "Receive",
    "Scope",
    "Send",
    "adding_headers",
    "header",
    "read_body",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


class ClientDisconnected(Exception):
    """The client went away before its body was read."""


def adding_headers(send: Send, added: Sequence[tuple[bytes, bytes]]) -> Send:
    """``send``, with ``added`` appended to the answer's headers."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", ()), *added])
        await send(message)

    return sending


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a (lowercase) request header."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit_bytes: int) -> bytes:
    """The whole request body, refusing more than ``limit_bytes``.

    Raises:
        PayloadTooLarge: the declared or the received length is over the limit.
        ClientDisconnected: the client went away first.
    """
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise _too_large(limit_bytes)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise _too_large(limit_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = JSON,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _too_large(limit_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit_bytes} bytes",
        reason="BODY_TOO_LARGE",
        metadata={"limit_bytes": str(limit_bytes)},
    )
