"""The events view's server side: a live tail of the mesh's events and the dead letters.

The tail subscribes, for as long as one page follows it, to the subjects the JetStream
events stream captures (``plugmesh.events.<type pattern>``, core NATS: no consumer is
created, nothing is acknowledged, as ``plugmesh events tail`` does), and sends each event
as one SSE frame; ``subject`` keeps only events whose CloudEvents subject starts with it.
Dead letters are listed and replayed with :mod:`meshkit.events.deadletters`, as
``plugmesh events dlq`` does.

Every feed and call shares one NATS connection (:func:`meshkit.events.connection.connect_nats`,
with the mesh's TLS options): opened on first use, so an admin's console costs nothing
while nobody looks; reconnecting by itself, so a tail outlives a NATS restart (nats-py
subscribes again on the new connection); closed by :meth:`NatsEvents.close`, which the
console calls when the gateway stops. A tail ends with its own subscription only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import nats.errors
from google.protobuf import json_format
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from gateway.console.sse import frame
from meshkit.events.connection import close_quietly, connect_nats
from meshkit.events.deadletters import DeadLetter, list_dead_letters, replay_dead_letter
from meshkit.events.envelope import parse_event, unpack_payload
from meshkit.events.errors import EnvelopeError, EventError
from meshkit.events.subscriber import filter_subject
from meshkit.tls import MeshTls

__all__ = ["EventsUnavailable", "NatsEvents", "event_view", "letter_view"]

#: Events held for a slow page before the oldest are dropped.
_BACKLOG = 256
_NAME = "plugmesh-gateway-console"


class EventsUnavailable(Exception):
    """NATS cannot be reached now."""


class NatsEvents:
    """The mesh's events on NATS, over one connection shared by every feed and call.

    Args:
        url: The NATS server.
        timeout_seconds: How long connecting and each JetStream call may take.
        tls: The certificate of the NATS connection over TLS; plaintext when None.
    """

    def __init__(
        self, url: str, *, timeout_seconds: float = 5.0, tls: MeshTls | None = None
    ) -> None:
        self._url = url
        self._tls = tls
        self._timeout = timeout_seconds
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def tail(self, type_pattern: str, subject_prefix: str) -> AsyncGenerator[bytes, None]:
        """An ``event`` frame per event of the types ``type_pattern`` matches, as they
        are published.

        Raises:
            ValueError: ``type_pattern`` is not a pattern of event types.
            EventsUnavailable: NATS cannot be reached.
        """
        subject = filter_subject(type_pattern or ">")
        client = await self._connection()
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=_BACKLOG)

        async def received(msg: Msg) -> None:
            if queue.full():
                queue.get_nowait()  # a page that cannot keep up loses the oldest
            queue.put_nowait(msg)

        return self._frames(client, subject, subject_prefix, queue, received)

    async def _frames(
        self,
        client: Client,
        subject: str,
        subject_prefix: str,
        queue: asyncio.Queue[Msg],
        received: Callable[[Msg], Awaitable[None]],
    ) -> AsyncGenerator[bytes, None]:
        subscription: Subscription | None = None
        try:
            subscription = await client.subscribe(subject, cb=received)
            await client.flush(timeout=int(self._timeout))
            yield frame("ready", {"subject": subject})
            while True:
                msg = await queue.get()
                view = event_view(msg.subject, msg.data)
                if view["subject"].startswith(subject_prefix):
                    yield frame("event", view)
        finally:
            if subscription is not None:
                with contextlib.suppress(nats.errors.Error, OSError):
                    await subscription.unsubscribe()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters.

        Raises:
            EventsUnavailable: NATS cannot be reached.
        """
        js = (await self._connection()).jetstream(timeout=self._timeout)
        try:
            return await list_dead_letters(js, limit=limit)
        except (TimeoutError, nats.errors.Error) as exc:
            raise EventsUnavailable(f"NATS did not answer: {exc or type(exc).__name__}") from exc

    async def replay(self, letter_id: str) -> DeadLetter:
        """Republish one dead letter on its subject and remove it from the stream.

        Raises:
            DeadLetterNotFound: There is none with that sequence or event id.
            EventsUnavailable: NATS cannot be reached.
        """
        js = (await self._connection()).jetstream(timeout=self._timeout)
        try:
            return await replay_dead_letter(js, letter_id, timeout_seconds=self._timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            raise EventsUnavailable(f"NATS did not answer: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        """Close the shared connection; later calls find NATS unavailable. Safe to call
        twice."""
        async with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            await close_quietly(client)

    async def _connection(self) -> Client:
        async with self._lock:
            if self._closed:
                raise EventsUnavailable("the gateway is stopping")
            if self._client is None or self._client.is_closed:
                try:
                    self._client = await connect_nats(
                        self._url, name=_NAME, timeout_seconds=self._timeout, tls=self._tls
                    )
                except EventError as exc:
                    raise EventsUnavailable(f"cannot reach NATS: {exc}") from exc
            return self._client


def event_view(subject: str, data: bytes) -> dict[str, Any]:
    """One event as the page shows it: its envelope attributes and its payload as JSON."""
    try:
        event = parse_event(data)
    except EnvelopeError as exc:
        return {"id": "", "type": subject, "source": "", "subject": "", "time": "",
                "payload": {}, "error": str(exc)}  # fmt: skip
    try:
        payload = json_format.MessageToDict(unpack_payload(event))
        error = ""
    except EnvelopeError as exc:
        payload, error = {}, str(exc)
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time.ToJsonString(),
        "payload": payload,
        "error": error,
    }


def letter_view(letter: DeadLetter) -> dict[str, Any]:
    """One dead letter as the page shows it."""
    return {
        "sequence": str(letter.sequence),
        "time": letter.time.isoformat() if letter.time else "",
        "consumer": letter.consumer,
        "eventId": letter.event_id,
        "eventType": letter.event_type,
        "subject": letter.original_subject,
        "attempts": letter.attempts,
        "error": letter.error,
    }
