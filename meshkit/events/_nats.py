"""The NATS side of the bus: connecting, and publishing batches to JetStream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck

from meshkit.events.errors import EventError
from meshkit.events.relay import Outgoing

__all__ = ["JetStreamPublisher", "connect_nats"]

log = logging.getLogger(__name__)


async def connect_nats(
    url: str,
    *,
    name: str,
    timeout_seconds: float = 10.0,
    on_reconnect: Sequence[Callable[[], None]] = (),
) -> Client:
    """Connect to NATS, retrying until ``timeout_seconds``; reconnect forever afterwards.

    Raises:
        EventError: No server answered in time.
    """

    client: list[Client] = []

    async def reconnected() -> None:
        log.info("NATS connection restored", extra={"nats": name})
        for callback in on_reconnect:
            callback()

    async def disconnected() -> None:
        if client and not (client[0].is_closed or client[0].is_draining):
            log.warning("NATS connection lost; reconnecting", extra={"nats": name})

    errors: list[Exception] = []

    async def error(exc: Exception) -> None:
        errors[:] = [exc]
        log.debug("NATS client error: %s", exc, extra={"nats": name})

    try:
        async with asyncio.timeout(timeout_seconds):
            # With max_reconnect_attempts=-1, nats-py also retries the first connect.
            connected = await nats.connect(
                url,
                name=name,
                connect_timeout=min(2.0, timeout_seconds),
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                reconnected_cb=reconnected,
                disconnected_cb=disconnected,
                error_cb=error,
                drain_timeout=2,
            )
    except TimeoutError:
        detail = f": {errors[-1]}" if errors else ""
        raise EventError(
            f"cannot connect to NATS at {url} within {timeout_seconds:g}s{detail}"
        ) from None
    client.append(connected)
    return connected


class JetStreamPublisher:
    """:class:`~meshkit.events.relay.StreamPublisher` over a nats-py JetStream context.

    A batch goes out pipelined (``publish_async``): every message is written, then every
    acknowledgement awaited together, under one deadline.
    """

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def publish_batch(
        self, messages: Sequence[Outgoing], *, timeout_seconds: float
    ) -> list[int | str]:
        """Publish ``messages``; for each, its stream sequence or what went wrong."""
        sent: list[asyncio.Future[PubAck] | str] = []
        for outgoing in messages:
            try:
                sent.append(
                    await self._js.publish_async(
                        outgoing.subject,
                        outgoing.data,
                        headers=dict(outgoing.headers),
                    )
                )
            except (nats.errors.Error, OSError) as exc:
                sent.append(_describe(exc))
        futures = [item for item in sent if not isinstance(item, str)]
        if futures:
            _, late = await asyncio.wait(futures, timeout=timeout_seconds)
            for future in late:
                future.cancel()  # also drops it from nats-py's table of pending publishes
        return [_result(item, timeout_seconds) for item in sent]


def _result(item: asyncio.Future[PubAck] | str, timeout_seconds: float) -> int | str:
    if isinstance(item, str):
        return item
    if item.cancelled():
        return f"TimeoutError: no acknowledgement from JetStream within {timeout_seconds:g}s"
    error = item.exception()
    if error is not None:
        return _describe(error)
    return item.result().seq


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
