"""Cancellations between gateway replicas: :class:`CancelRelay`.

A handshake-era client (2025-11-25, 2025-06-18) cancels a call with a
``notifications/cancelled`` of its own, a request of its own that a load balancer may
send to another replica than the one running the call. The replica that receives it and
runs no such call tells the others over core NATS (subject :data:`SUBJECT`, at most
once, not stored: a cancellation is advice, and a call that ended meanwhile needs none);
the one running it cancels it::

    relay = CancelRelay(nats_url, on_cancel=cancellations.cancel_here)
    await relay.start()                     # connects in the background
    relay.tell(("caller", "session", "7"))  # another replica may run it
    await relay.close()

A call is named by (caller id, session id, request id): a replica cancels only a call of
the same caller in the same session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg

from meshkit.events.connection import close_quietly, keep_connecting
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls

__all__ = ["SUBJECT", "CallKey", "CancelRelay"]

log = logging.getLogger(__name__)

#: Where replicas tell each other of cancellations (outside the events' stream).
SUBJECT = "plugmesh.gateway.mcp.cancelled"

#: How long to wait before trying NATS again when it cannot be reached at start.
_RETRY_SECONDS = 1.0

#: (caller id, session id, request id) of a running call.
CallKey = tuple[str, str, str]


class CancelRelay:
    """Tells the other replicas of cancellations, and hears theirs.

    Args:
        nats_url: Where NATS runs.
        nats_tls: The certificate of its NATS connection over TLS; plaintext when ``None``.
        on_cancel: Cancels the call of that key if this replica runs it.
    """

    def __init__(
        self,
        nats_url: str,
        on_cancel: Callable[[CallKey], object],
        *,
        nats_tls: MeshTls | None = None,
    ) -> None:
        self._url = nats_url
        self._nats_tls = nats_tls
        self._on_cancel = on_cancel
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Whether it can tell and hear now."""
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        """Connect in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._connect(), name="gateway-mcp-cancel-relay")

    async def close(self) -> None:
        """Stop. Safe to call twice."""
        if self._task is not None:
            await cancel_and_wait(self._task, *self._sending)
        nc, self._nc = self._nc, None
        if nc is not None:
            await close_quietly(nc)

    def tell(self, key: CallKey) -> None:
        """Tell the other replicas that the call ``key`` is cancelled (in the background;
        dropped when NATS is away)."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            log.warning("a cancellation could not reach the other replicas: NATS is away")
            return
        payload = json.dumps(dict(zip(("caller", "session", "request"), key, strict=True)))
        task = asyncio.get_running_loop().create_task(nc.publish(SUBJECT, payload.encode()))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _connect(self) -> None:
        self._nc = await keep_connecting(
            self._url,
            name="plugmesh-gateway-mcp-cancel",
            tls=self._nats_tls,
            ready=self._subscribe,
            unavailable_warning="cancellations cannot reach the other replicas yet",
            retry_seconds=_RETRY_SECONDS,
        )

    async def _subscribe(self, nc: Client) -> None:
        await nc.subscribe(SUBJECT, cb=self._received)
        await nc.flush()

    async def _received(self, msg: Msg) -> None:
        try:
            told = json.loads(msg.data)
            key = (str(told["caller"]), str(told["session"]), str(told["request"]))
        except (ValueError, KeyError, TypeError):
            log.warning("a cancellation from another replica does not parse; ignored")
            return
        self._on_cancel(key)
