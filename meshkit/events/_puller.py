"""Pull requests to a durable consumer, with delivered messages collected by a callback.

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with its own
``asyncio.wait_for`` (a task per message), which costs more than handling the event,
and leaks plain ``TimeoutError``s. This keeps one pull request open at a time: it asks
for ``batch`` messages expiring after ``wait_seconds``, collects whatever the server
sends into a queue, and counts the request as done when all its messages came or the
server said it is over (404 no messages, 408 expired, 409 consumer gone or too many
waiting requests). A request that got lost (a reconnect) is abandoned after its expiry.
When a batch is handed out and the request is done, the next request goes out at once,
so a busy consumer's next batch travels while the current one is handled.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["PullError", "Puller", "delivery_of"]

_STATUS = "Status"
_DESCRIPTION = "Description"
_HEARTBEAT = "100"
_CONFLICT = "409"


class PullError(Exception):
    """The server ended a pull request with a conflict (409), for example a deleted consumer."""

    def __init__(self, consumer: str, description: str) -> None:
        super().__init__(f"pull from consumer {consumer} refused: {description}")
        self.consumer = consumer
        self.description = description


class Puller:
    """Fetches batches from one durable pull consumer.

    Args:
        nc: A connected client.
        stream: The stream's name.
        consumer: The durable consumer's name.
    """

    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._consumer = consumer
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._queue: collections.deque[Msg] = collections.deque()
        self._arrived = asyncio.Event()
        self._owed = 0
        self._request_expiry = 0.0
        self._conflict: str | None = None
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the inbox the server delivers to. Safe to call twice."""
        if self._subscription is None:
            self._subscription = await self._nc.subscribe(self._inbox, cb=self._received)

    async def fetch(self, batch: int, wait_seconds: float) -> list[Msg]:
        """Up to ``batch`` messages; waits at most ``wait_seconds`` for the first one.

        Raises:
            PullError: The server refused the pull request (409).
        """
        if not self._queue:
            if self._owed == 0 or time.monotonic() > self._request_expiry:
                await self._request(batch, wait_seconds)
            try:
                async with asyncio.timeout(wait_seconds):
                    while not self._queue and self._owed > 0:
                        self._arrived.clear()
                        await self._arrived.wait()
            except TimeoutError:
                pass
        conflict, self._conflict = self._conflict, None
        if conflict is not None and not self._queue:
            raise PullError(self._consumer, conflict)
        msgs = [self._queue.popleft() for _ in range(min(batch, len(self._queue)))]
        if msgs and not self._queue and self._owed == 0:
            # Busy: ask for the next batch now, so that it arrives while this one is handled.
            await self._request(batch, wait_seconds)
        return msgs

    async def close(self) -> None:
        """Give back the messages not handed out (nak, for a prompt redelivery) and stop.

        Safe to call twice.
        """
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.unsubscribe()
        while self._queue:
            await self._queue.popleft().nak()

    async def _request(self, batch: int, wait_seconds: float) -> None:
        request = {"batch": batch, "expires": int(wait_seconds * 1e9)}
        self._owed = batch
        self._request_expiry = time.monotonic() + wait_seconds + 1.0
        await self._nc.publish(self._next_subject, json.dumps(request).encode(), reply=self._inbox)

    async def _received(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._queue.append(msg)
            self._owed = max(0, self._owed - 1)
        elif status == _HEARTBEAT:
            return
        else:
            self._owed = 0
            if status == _CONFLICT:
                self._conflict = (msg.headers or {}).get(_DESCRIPTION, "conflict")
        self._arrived.set()


def delivery_of(msg: Msg) -> tuple[int, int]:
    """Which delivery of its message ``msg`` is (from 1), and its stream sequence.

    Read from the reply subject as nats-py's ``Msg.metadata`` does, without building
    the objects it returns for every message. The subject is
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``,
    or with ``<domain>.<account hash>`` after ``$JS.ACK`` and a random token at the end.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[4]), int(tokens[5])
    if len(tokens) >= 11:
        return int(tokens[6]), int(tokens[7])
    metadata = msg.metadata  # raises the error nats-py raises for a subject it cannot read
    return metadata.num_delivered, metadata.sequence.stream
