"""The upstream MCP servers on the event bus: ``mcp.server.*`` out, and every replica
following them in.

Out: :class:`OutboxSink` writes each change's event to the outbox in the change's own
transaction, so an event exists exactly when the change does. No payload carries a
secret value: the server goes out as the API shows it.

In: :class:`Follower` is a core NATS subscription (not a durable consumer: every replica
must hear every change) to ``mcp.server.>`` and ``mcp.hook.>``, made in the background
(tried again while NATS is away); on each event, on every (re)connection and every
``resync_seconds`` it calls ``reload``, which applies what the database holds, so a
change missed while NATS was away is applied all the same. The database is the truth;
an event only says "look now".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import field_mask_pb2
from nats.aio.client import Client
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.mcpservers.convert import server_to_proto
from gateway.mcpservers.model import McpServer
from meshkit.events import subject_of
from meshkit.events.bus import Publisher
from meshkit.events.connection import close_quietly, keep_connecting
from meshkit.identity import Identity, event_actor
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls
from plugmesh.events.v1 import mcp_server_events_pb2

__all__ = ["CREATED", "DELETED", "UPDATED", "Follower", "OutboxSink", "subject_of_server"]

log = logging.getLogger(__name__)

CREATED = "mcp.server.created"
UPDATED = "mcp.server.updated"
DELETED = "mcp.server.deleted"

#: How often a replica applies the database's servers even without an event.
DEFAULT_RESYNC_SECONDS = 60.0


def subject_of_server(name: str) -> str:
    """The resource name events and audit entries use for a server."""
    return f"mcp/servers/{name}"


class OutboxSink:
    """Publishes ``mcp.server.*`` via the outbox (a
    :class:`~gateway.mcpservers.core.ChangeSink`)."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def created(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        """Publish ``mcp.server.created``."""
        payload = mcp_server_events_pb2.McpServerCreated(
            actor=event_actor(actor), server=server_to_proto(server)
        )
        self._publisher.publish(session, payload, subject=subject_of_server(server.name))

    def updated(
        self, session: AsyncSession, actor: Identity, server: McpServer, changed: Sequence[str]
    ) -> None:
        """Publish ``mcp.server.updated`` with the fields that changed."""
        payload = mcp_server_events_pb2.McpServerUpdated(
            actor=event_actor(actor),
            server=server_to_proto(server),
            changed=field_mask_pb2.FieldMask(paths=list(changed)),
        )
        self._publisher.publish(session, payload, subject=subject_of_server(server.name))

    def deleted(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        """Publish ``mcp.server.deleted`` with the server's last state."""
        payload = mcp_server_events_pb2.McpServerDeleted(
            actor=event_actor(actor), server=server_to_proto(server)
        )
        self._publisher.publish(session, payload, subject=subject_of_server(server.name))


class Follower:
    """Keeps this replica's upstream servers (and hook modes) to the database, told by
    ``mcp.server.*`` and ``mcp.hook.*``.

    Args:
        nats_url: Where NATS runs.
        reload: Applies the database's servers to this replica.
        resync_seconds: How often to reload without an event.
    """

    def __init__(
        self,
        nats_url: str,
        reload: Callable[[], Awaitable[None]],
        *,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        nats_tls: MeshTls | None = None,
    ) -> None:
        self._url = nats_url
        self._nats_tls = nats_tls
        self._reload = reload
        self._resync = resync_seconds
        self._wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._nc: Client | None = None

    async def start(self) -> None:
        """Connect in the background and start reloading; returns at once."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._connect(), name="gateway-mcp-servers-nats"),
                asyncio.create_task(self._keep_reloading(), name="gateway-mcp-servers-reload"),
            ]

    async def close(self) -> None:
        """Stop. Safe to call twice."""
        await cancel_and_wait(*self._tasks)
        nc, self._nc = self._nc, None
        if nc is not None:
            await close_quietly(nc)

    def poke(self) -> None:
        """Reload soon (several pokes before it runs make one reload)."""
        self._wanted.set()

    async def _keep_reloading(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for may swallow a
            # cancellation that comes as the event is set, and the loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._resync):
                    await self._wanted.wait()
            self._wanted.clear()
            try:
                await self._reload()
            except Exception:
                log.exception("the upstream MCP servers could not be reloaded")

    async def _connect(self) -> None:
        # Until NATS can be had, the periodic resync alone applies changes.
        nc = await keep_connecting(
            self._url,
            name="plugmesh-gateway-mcp-servers",
            tls=self._nats_tls,
            ready=self._subscribe,
            on_reconnect=[self.poke],  # what was published meanwhile was missed
            unavailable_warning="the gateway cannot follow mcp.server and mcp.hook events yet",
        )
        self._nc = nc
        self.poke()

    async def _subscribe(self, nc: Client) -> None:
        await nc.subscribe(subject_of("mcp.server.>"), cb=self._received)
        await nc.subscribe(subject_of("mcp.hook.>"), cb=self._received)
        await nc.flush()

    async def _received(self, _msg: Msg) -> None:
        self.poke()
