"""The events view's server side: a live tail of the mesh's events and the dead letters.

The tail subscribes, for as long as one page follows it, to the subjects the JetStream
events stream captures (``plugmesh.events.<type pattern>``, core NATS: no consumer is
created, nothing is acknowledged, as ``plugmesh events tail`` does), and sends each event
as one SSE frame; ``subject`` keeps only events whose CloudEvents subject starts with it.
Dead letters are listed and replayed with :mod:`meshkit.events.deadletters`, as
``plugmesh events dlq`` does. Each feed or call opens its own NATS connection and closes
it when done: an admin's console needs no connection while nobody looks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import nats.errors
from google.protobuf import json_format
from nats.aio.client import Client
from nats.aio.msg import Msg

from gateway.console.sse import frame
from meshkit.events.deadletters import DeadLetter, list_dead_letters, replay_dead_letter
from meshkit.events.envelope import parse_event, unpack_payload
from meshkit.events.errors import EnvelopeError
from meshkit.events.subscriber import filter_subject
from meshkit.tls import MeshTls, nats_options

__all__ = ["EventsUnavailable", "NatsEvents", "event_view", "letter_view"]

#: Events held for a slow page before the oldest are dropped.
_BACKLOG = 256


class EventsUnavailable(Exception):
    """NATS cannot be reached now."""


class NatsEvents:
    """The mesh's events on NATS.

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

    async def tail(self, type_pattern: str, subject_prefix: str) -> AsyncIterator[bytes]:
        """An ``event`` frame per event of the types ``type_pattern`` matches, as they
        are published.

        Raises:
            ValueError: ``type_pattern`` is not a pattern of event types.
            EventsUnavailable: NATS cannot be reached.
        """
        subject = filter_subject(type_pattern or ">")
        client = await self._connect()
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
    ) -> AsyncIterator[bytes]:
        try:
            await client.subscribe(subject, cb=received)
            await client.flush(timeout=int(self._timeout))
            yield frame("ready", {"subject": subject})
            while True:
                msg = await queue.get()
                view = event_view(msg.subject, msg.data)
                if view["subject"].startswith(subject_prefix):
                    yield frame("event", view)
        finally:
            await _close(client)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters.

        Raises:
            EventsUnavailable: NATS cannot be reached.
        """
        client = await self._connect()
        try:
            return await list_dead_letters(client.jetstream(timeout=self._timeout), limit=limit)
        finally:
            await _close(client)

    async def replay(self, letter_id: str) -> DeadLetter:
        """Republish one dead letter on its subject and remove it from the stream.

        Raises:
            DeadLetterNotFound: There is none with that sequence or event id.
            EventsUnavailable: NATS cannot be reached.
        """
        client = await self._connect()
        try:
            js = client.jetstream(timeout=self._timeout)
            return await replay_dead_letter(js, letter_id, timeout_seconds=self._timeout)
        finally:
            await _close(client)

    async def _connect(self) -> Client:
        async def quiet(_exc: Exception) -> None:
            pass

        try:
            async with asyncio.timeout(self._timeout):
                return await nats.connect(
                    self._url,
                    name="plugmesh-gateway-console",
                    connect_timeout=self._timeout,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    error_cb=quiet,
                    **nats_options(self._tls),
                )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            raise EventsUnavailable(f"cannot reach NATS: {exc or type(exc).__name__}") from exc


async def _close(client: Client) -> None:
    with contextlib.suppress(nats.errors.Error, OSError):
        await client.close()


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
