"""The NATS side of the bus: publishing batches to JetStream (connecting is
:mod:`meshkit.events.connection`'s)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from meshkit.events.relay import Outgoing

__all__ = ["JetStreamPublisher"]

_NO_RESPONDERS = "503"


class JetStreamPublisher:
    """:class:`~meshkit.events.relay.StreamPublisher` writing straight to a NATS connection.

    A batch goes out pipelined: every message is published with a reply subject of its
    own under one inbox of this publisher, then the acknowledgements JetStream sends there
    are awaited together, under one deadline. This is what nats-py's ``publish_async``
    does, without a future, a task-backed semaphore wait and a random token per message,
    which cost more than the rest of relaying an event.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = f"{nc.new_inbox()}."
        self._batches: dict[int, _Batch] = {}
        self._numbers = itertools.count()
        self._subscription: Subscription | None = None

    async def publish_batch(
        self, messages: Sequence[Outgoing], *, timeout_seconds: float
    ) -> list[int | str]:
        """Publish ``messages``; for each, its stream sequence or what went wrong."""
        if self._subscription is None:
            self._subscription = await self._nc.subscribe(self._prefix + "*.*", cb=self._acked)
        number = next(self._numbers)
        batch = self._batches[number] = _Batch(len(messages))
        reply = f"{self._prefix}{number}."
        try:
            for index, outgoing in enumerate(messages):
                try:
                    await self._nc.publish(
                        outgoing.subject,
                        outgoing.data,
                        reply=f"{reply}{index}",
                        headers=dict(outgoing.headers),
                    )
                except (nats.errors.Error, OSError) as exc:
                    batch.settle(index, _describe(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_seconds):
                    await batch.done.wait()
        finally:
            del self._batches[number]
        late = f"TimeoutError: no acknowledgement from JetStream within {timeout_seconds:g}s"
        return [late if result is None else result for result in batch.results]

    async def _acked(self, msg: Msg) -> None:
        number, _, index = msg.subject[len(self._prefix) :].partition(".")
        batch = self._batches.get(int(number))
        if batch is not None:  # else: an acknowledgement that came after its deadline
            batch.settle(int(index), _acknowledgement(msg))


class _Batch:
    """The results of one batch of publishes, filled in as acknowledgements arrive."""

    def __init__(self, size: int) -> None:
        self.results: list[int | str | None] = [None] * size
        self.done = asyncio.Event()
        self._waiting = size
        if size == 0:
            self.done.set()

    def settle(self, index: int, result: int | str) -> None:
        if self.results[index] is None:
            self.results[index] = result
            self._waiting -= 1
            if self._waiting == 0:
                self.done.set()


def _acknowledgement(msg: Msg) -> int | str:
    """The stream sequence JetStream acknowledged, or why it refused the message."""
    if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
        return "NoStreamResponseError: no stream takes this subject"
    try:
        answer = json.loads(msg.data)
        error = answer.get("error")
        if error is not None:
            return f"APIError: {error.get('description', error)} (code {error.get('code')})"
        return int(answer["seq"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"APIError: unreadable acknowledgement {msg.data[:200]!r} ({exc})"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
