"""What the admin API of the upstream MCP servers does, whoever asks.

Rules kept here: names are unique; secrets are sealed before they are stored (a server
with secrets needs the mesh's registration secret); each change publishes its event in
its own transaction (the outbox), and is applied to this replica's upstreams as soon as
it is committed (the other replicas apply it on its event, :mod:`gateway.mcpservers.events`).
The servers file seeds the database: a server in it that the database does not have yet
is added when the gateway starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.spec import StdioTransport, UpstreamSpec
from gateway.mcpfront.upstream import UpstreamStatus
from gateway.mcpservers.model import McpServer
from gateway.mcpservers.sealing import SealError
from gateway.mcpservers.store import ServerStore
from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.errors import AlreadyExists, FailedPrecondition, NotFound
from meshkit.identity import Identity

__all__ = ["ChangeSink", "McpServers"]

log = logging.getLogger(__name__)

_REFRESH_POLL_SECONDS = 0.05


class ChangeSink(Protocol):
    """Records the events of a change in the transaction that makes it (the outbox)."""

    def created(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        """``server`` was added."""

    def updated(
        self, session: AsyncSession, actor: Identity, server: McpServer, changed: Sequence[str]
    ) -> None:
        """``server`` was changed; ``changed`` names the fields that changed value."""

    def deleted(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        """``server`` was removed; it is its last state."""


class McpServers:
    """The upstream MCP servers, in the gateway's database, applied to its upstreams.

    Args:
        database: The gateway's database.
        sink: Where the events of changes go.
        upstreams: This replica's running upstream servers.
        store: The SQL behind it.
        clock: Tells the time of changes.
    """

    def __init__(
        self,
        database: Database,
        sink: ChangeSink,
        upstreams: Upstreams,
        store: ServerStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._db = database
        self._sink = sink
        self._upstreams = upstreams
        self._store = store
        self._clock = clock
        self._applying = asyncio.Lock()

    # --- reads ------------------------------------------------------------------------

    async def get(self, name: str) -> McpServer:
        """The server ``name``.

        Raises:
            NotFound: There is none.
        """
        async with self._db.read() as session:
            server = await self._store.get(session, name)
        if server is None:
            raise _not_found(name)
        return server

    async def page(self, *, after: str | None, limit: int) -> tuple[Sequence[McpServer], bool]:
        """Up to ``limit`` servers by name, after ``after``, and whether more follow."""
        async with self._db.read() as session:
            servers = await self._store.page(session, after=after, limit=limit + 1)
        return servers[:limit], len(servers) > limit

    def status(self, name: str) -> UpstreamStatus | None:
        """What this replica sees of the server ``name``; None when it does not run it."""
        upstream = self._upstreams.get(name)
        return upstream.status() if upstream is not None else None

    async def refresh(self, name: str, *, timeout_seconds: float) -> UpstreamStatus | None:
        """Fetch the server's tools again now (connect again now when failing), and wait up
        to ``timeout_seconds`` for the outcome; returns the status then.

        Raises:
            NotFound: There is no such server.
        """
        await self.get(name)
        upstream = self._upstreams.get(name)
        if upstream is None:
            return None
        before = upstream.status()
        upstream.refresh()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while loop.time() < deadline:
            now = upstream.status()
            if now.tools_fetch_time != before.tools_fetch_time or now.state != before.state:
                return now
            await asyncio.sleep(_REFRESH_POLL_SECONDS)
        return upstream.status()

    # --- changes ----------------------------------------------------------------------

    async def create(self, actor: Identity, spec: UpstreamSpec, *, description: str) -> McpServer:
        """Add a server and start it on this replica.

        Raises:
            AlreadyExists: The name is taken.
            FailedPrecondition: It has secrets and there is no key to seal them with.
        """
        server = await self._insert(actor, spec, description=description)
        await self.apply()
        return server

    async def _insert(self, actor: Identity, spec: UpstreamSpec, *, description: str) -> McpServer:
        """Store a new server and its event; see :meth:`create`."""
        now = self._clock.now()
        server = McpServer(spec=spec, description=description, create_time=now, update_time=now)
        try:
            async with self._db.transaction() as session:
                if await self._store.get(session, spec.name) is not None:
                    raise _name_taken(spec.name)
                await self._store.insert(session, server)
                self._sink.created(session, actor, server)
        except IntegrityError:
            raise _name_taken(spec.name) from None
        except SealError as exc:
            raise _unsealable(spec.name, exc) from None
        log.info("upstream MCP server added", extra={"server": spec.name})
        return server

    async def update(
        self, actor: Identity, name: str, change: Callable[[McpServer], McpServer]
    ) -> McpServer:
        """Change the server ``name`` to what ``change`` makes of it, in one transaction.

        Raises:
            NotFound: There is no such server.
            FailedPrecondition: It now has secrets and there is no key to seal them with.
        """
        try:
            async with self._db.transaction() as session:
                old = await self._store.get(session, name, lock=True)
                if old is None:
                    raise _not_found(name)
                new = change(old)
                changed = _changed_fields(old, new)
                if not changed:
                    return old
                new = dataclasses.replace(new, update_time=self._clock.now())
                await self._store.replace(session, new)
                self._sink.updated(session, actor, new, changed)
        except SealError as exc:
            raise _unsealable(name, exc) from None
        log.info("upstream MCP server changed", extra={"server": name, "changed": changed})
        await self.apply()
        return new

    async def delete(self, actor: Identity, name: str) -> None:
        """Remove the server ``name``; this replica stops it at once.

        Raises:
            NotFound: There is no such server.
        """
        async with self._db.transaction() as session:
            server = await self._store.get(session, name, lock=True)
            if server is None:
                raise _not_found(name)
            await self._store.delete(session, name)
            self._sink.deleted(session, actor, server)
        log.info("upstream MCP server removed", extra={"server": name})
        await self.apply()

    async def seed(self, actor: Identity, specs: Iterable[UpstreamSpec]) -> None:
        """Add each server of ``specs`` the database does not have yet (the servers file);
        they run once :meth:`apply` is called, as at start."""
        for spec in specs:
            try:
                await self._insert(actor, spec, description="from the servers file")
            except AlreadyExists:
                continue

    async def apply(self) -> None:
        """Run on this replica exactly the servers the database holds."""
        async with self._applying:
            async with self._db.read() as session:
                servers = await self._store.all(session)
            await self._upstreams.apply(server.spec for server in servers)


def _changed_fields(old: McpServer, new: McpServer) -> list[str]:
    fields = []
    if old.description != new.description:
        fields.append("description")
    a, b = old.spec, new.spec
    if a.transport != b.transport:  # secrets included
        fields.append("stdio" if isinstance(b.transport, StdioTransport) else "streamable_http")
    for name, label in (
        ("enabled", "enabled"),
        ("include_tools", "include_tools"),
        ("exclude_tools", "exclude_tools"),
        ("call_timeout_seconds", "call_timeout"),
        ("max_concurrent_calls", "max_concurrent_calls"),
    ):
        if getattr(a, name) != getattr(b, name):
            fields.append(label)
    return fields


def _not_found(name: str) -> NotFound:
    return NotFound(
        f"upstream MCP server {name!r} does not exist",
        reason="MCP_SERVER_NOT_FOUND",
        metadata={"name": name},
    )


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists(
        f"an upstream MCP server is already called {name!r}",
        reason="MCP_SERVER_NAME_TAKEN",
        metadata={"name": name},
    )


def _unsealable(name: str, exc: SealError) -> FailedPrecondition:
    return FailedPrecondition(
        f"upstream MCP server {name!r}: {exc}",
        reason="MCP_SERVER_SECRETS_UNSEALABLE",
        metadata={"name": name},
    )
