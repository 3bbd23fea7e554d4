"""Upstream MCP servers in the gateway's database (the rows of
:mod:`gateway.mcpservers.tables`).

Every method works inside a session its caller opened, so a change and the outbox row of
its event share one transaction. The store speaks :class:`~gateway.mcpservers.model.McpServer`;
it seals secrets on the way in and opens them on the way out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gateway.mcpfront.spec import UpstreamSpec
from gateway.mcpservers.model import McpServer, secrets_of
from gateway.mcpservers.sealing import Sealer, SealError
from gateway.mcpservers.tables import ServerRow, transport_json, transport_of
from meshkit.db import aware_utc, naive_utc

__all__ = ["ServerStore"]

log = logging.getLogger(__name__)


class ServerStore:
    """Reads and writes servers in the session it is given.

    Args:
        sealer: Seals and opens the servers' secrets.
    """

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    async def get(
        self, session: AsyncSession, name: str, *, lock: bool = False
    ) -> McpServer | None:
        """The server ``name``, or None; ``lock`` holds its row until the transaction ends."""
        query = select(ServerRow).where(ServerRow.name == name)
        if lock:
            query = query.with_for_update()
        row = (await session.scalars(query)).first()
        return self._server(row) if row is not None else None

    async def page(
        self, session: AsyncSession, *, after: str | None, limit: int
    ) -> Sequence[McpServer]:
        """Up to ``limit`` servers by name, those after ``after``."""
        query = select(ServerRow).order_by(col(ServerRow.name)).limit(limit)
        if after is not None:
            query = query.where(col(ServerRow.name) > after)
        return [self._server(row) for row in await session.scalars(query)]

    async def all(self, session: AsyncSession) -> list[McpServer]:
        """Every server, by name, but those whose secrets do not open (logged)."""
        query = select(ServerRow).order_by(col(ServerRow.name))
        servers = []
        for row in await session.scalars(query):
            try:
                servers.append(self._server(row))
            except SealError as exc:
                log.error("upstream MCP server %s left out: %s", row.name, exc)
        return servers

    async def insert(self, session: AsyncSession, server: McpServer) -> None:
        """Add ``server``.

        Raises:
            sqlalchemy.exc.IntegrityError: The name is taken.
        """
        session.add(self._row(server))
        await session.flush()

    async def replace(self, session: AsyncSession, server: McpServer) -> None:
        """Store ``server`` over the row of its name."""
        await session.merge(self._row(server))
        await session.flush()

    async def delete(self, session: AsyncSession, name: str) -> None:
        """Remove the server ``name``."""
        await session.execute(delete(ServerRow).where(col(ServerRow.name) == name))

    def _row(self, server: McpServer) -> ServerRow:
        spec = server.spec
        secrets = secrets_of(spec)
        return ServerRow(
            name=spec.name,
            description=server.description,
            transport=transport_json(spec.transport),
            secrets=self._sealer.seal(spec.name, secrets),
            secret_names=sorted(secrets),
            enabled=spec.enabled,
            include_tools=list(spec.include_tools),
            exclude_tools=list(spec.exclude_tools),
            call_timeout_millis=round(spec.call_timeout_seconds * 1000),
            max_concurrent_calls=spec.max_concurrent_calls,
            create_time=naive_utc(server.create_time),
            update_time=naive_utc(server.update_time),
        )

    def _server(self, row: ServerRow) -> McpServer:
        secrets = self._sealer.open(row.name, row.secrets)
        spec = UpstreamSpec(
            name=row.name,
            transport=transport_of(row.transport, secrets),
            enabled=row.enabled,
            include_tools=tuple(row.include_tools),
            exclude_tools=tuple(row.exclude_tools),
            call_timeout_seconds=row.call_timeout_millis / 1000,
            max_concurrent_calls=row.max_concurrent_calls,
        )
        return McpServer(
            spec=spec,
            description=row.description,
            create_time=aware_utc(row.create_time),
            update_time=aware_utc(row.update_time),
        )
