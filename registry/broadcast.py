"""In-process fan-out of service changes to watchers.

Each watcher has a bounded queue. A watcher that falls so far behind that its queue is
full is *overflowed*: it gets nothing more, and the watch stream ends with
RESOURCE_EXHAUSTED so that the caller reconnects and starts again from a fresh snapshot.
Publishing never blocks, so one slow watcher cannot hold up the registry. Closing the
broadcaster ends every subscription, so watch streams finish before the server stops.
Lease renewals (``ServiceChange.renewal``) go only to the subscriptions that asked for
them, so the gateway's catalog and discovery never see one.
"""

from __future__ import annotations

import asyncio

from registry.model import ServiceChange


class WatcherOverflowed(Exception):
    """The watcher fell too far behind and missed changes."""


class BroadcastClosed(Exception):
    """The registry is shutting down; no more changes will come."""


_OVERFLOWED = "overflowed"
_CLOSED = "closed"


class Subscription:
    """One watcher's queue of changes. Use :meth:`Broadcaster.subscribe` to make one."""

    def __init__(self, broadcaster: Broadcaster, capacity: int, *, renewals: bool) -> None:
        self._broadcaster = broadcaster
        self.renewals = renewals
        # One slot beyond the capacity is kept free for the end-of-stream marker.
        self._queue: asyncio.Queue[ServiceChange | str] = asyncio.Queue(maxsize=capacity + 1)
        self._capacity = capacity
        self.overflowed = False
        self._ended = False

    async def get(self) -> ServiceChange:
        """Wait for the next change.

        Raises:
            WatcherOverflowed: changes were dropped because the watcher was too slow.
            BroadcastClosed: the broadcaster was closed.
        """
        change = await self._queue.get()
        if isinstance(change, str):
            if change == _OVERFLOWED:
                raise WatcherOverflowed(f"more than {self._capacity} changes were waiting")
            raise BroadcastClosed("the registry is shutting down")
        return change

    def close(self) -> None:
        """Stop receiving changes. Safe to call twice."""
        self._broadcaster.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _offer(self, change: ServiceChange) -> None:
        if self._ended or (change.renewal and not self.renewals):
            return
        if self._queue.qsize() >= self._capacity:
            self.overflowed = True
            self._end(_OVERFLOWED)
            return
        self._queue.put_nowait(change)

    def _end(self, marker: str) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(marker)


class Broadcaster:
    """Delivers every published change to every current subscription.

    Args:
        capacity: How many undelivered changes a watcher may have before it overflows.
    """

    def __init__(self, *, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    def subscribe(self, *, renewals: bool = False) -> Subscription:
        """Start receiving every change published from now on, lease renewals included
        when ``renewals``."""
        subscription = Subscription(self, self._capacity, renewals=renewals)
        if self._closed:
            subscription._end(_CLOSED)
        else:
            self._subscriptions.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription, now and to come. Safe to call twice."""
        self._closed = True
        for subscription in self._subscriptions:
            subscription._end(_CLOSED)
        self._subscriptions.clear()

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``."""
        self._subscriptions.discard(subscription)

    def publish(self, change: ServiceChange) -> None:
        """Deliver ``change`` to every subscription; never blocks."""
        for subscription in list(self._subscriptions):
            subscription._offer(change)
            if subscription._ended:
                self._subscriptions.discard(subscription)

    @property
    def renewal_watchers(self) -> int:
        """How many open subscriptions want lease renewals."""
        return sum(1 for subscription in self._subscriptions if subscription.renewals)

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)
