"""The pins, in the plugin's database: approve a server's tools, list and delete pins,
and tell which offered tools differ from their pins (announcing each new difference once,
as ``tool_pin.definition_changed``, in the transaction that records it).

Every change and its event share one transaction (the outbox), so an event exists
exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc
from sqlalchemy import delete
from sqlmodel import col, select

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database, aware_utc, naive_utc
from meshkit.events.bus import Publisher
from meshkit.identity import Identity, PrincipalKind, event_actor
from plugmesh.events.v1 import tool_pin_events_pb2
from plugmesh.mcp.v1 import servers_pb2
from plugmesh.toolpins.v1 import toolpins_pb2
from services.toolpins.digest import changed_fields, definition, digest, tool_of
from services.toolpins.tables import DriftRow, PinRow

__all__ = ["Offered", "ToolPins"]

#: Who announces a definition change: the plugin itself.
_SELF = Identity(PrincipalKind.SERVICE, "tool-pins")


@dataclass(frozen=True)
class Offered:
    """A tool a listing offers: its server, and its definition as the gateway gives it."""

    server: str
    tool: servers_pb2.Tool

    @property
    def key(self) -> str:
        """``server/tool``, as FilterTools names it."""
        return f"{self.server}/{self.tool.name}"


class ToolPins:
    """The pins and their checks.

    Args:
        database: The plugin's database.
        publisher: Where the events go (the outbox).
        clock: Tells the time of approvals and changes.
    """

    def __init__(
        self, database: Database, publisher: Publisher, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._db = database
        self._publisher = publisher
        self._clock = clock

    async def approve(
        self, actor: Identity, server: str, tools: Sequence[servers_pb2.Tool]
    ) -> list[toolpins_pb2.ToolPin]:
        """Pin ``tools`` as ``server``'s, replacing its earlier pins."""
        now = naive_utc(self._clock.now())
        rows = [
            PinRow(
                server=server,
                tool=tool.name,
                digest=digest(definition(tool)),
                definition=definition(tool),
                approved_by=actor.subject,
                approve_time=now,
            )
            for tool in sorted(tools, key=lambda tool: tool.name)
        ]
        async with self._db.transaction() as session:
            await session.execute(delete(PinRow).where(col(PinRow.server) == server))
            await session.execute(delete(DriftRow).where(col(DriftRow.server) == server))
            session.add_all(rows)
            payload = tool_pin_events_pb2.ToolPinApproved(
                actor=event_actor(actor), server=server, tools=[row.tool for row in rows]
            )
            self._publisher.publish(session, payload, subject=_subject(server))
        return [_pin(row) for row in rows]

    async def pins(self, server: str = "") -> list[toolpins_pb2.ToolPin]:
        """The pins of ``server`` (of every server when ""), by server and tool."""
        query = select(PinRow).order_by(col(PinRow.server), col(PinRow.tool))
        if server:
            query = query.where(col(PinRow.server) == server)
        async with self._db.read() as session:
            return [_pin(row) for row in await session.scalars(query)]

    async def delete(self, actor: Identity, server: str) -> None:
        """Remove ``server``'s pins (nothing when it has none)."""
        async with self._db.transaction() as session:
            removed = await session.execute(delete(PinRow).where(col(PinRow.server) == server))
            await session.execute(delete(DriftRow).where(col(DriftRow.server) == server))
            if getattr(removed, "rowcount", 0):
                payload = tool_pin_events_pb2.ToolPinDeleted(
                    actor=event_actor(actor), server=server
                )
                self._publisher.publish(session, payload, subject=_subject(server))

    async def differing(self, offered: Sequence[Offered]) -> set[str]:
        """The ``server/tool`` of the offered tools of approved servers that differ from
        their pins or have none; each new difference is announced once."""
        servers = {tool.server for tool in offered}
        async with self._db.read() as session:
            query = select(PinRow).where(col(PinRow.server).in_(servers))
            pinned = {(row.server, row.tool): row for row in await session.scalars(query)}
        approved = {server for server, _ in pinned}
        found = []
        for tool in offered:
            if tool.server not in approved:
                continue
            pin = pinned.get((tool.server, tool.tool.name))
            current = definition(tool.tool)
            if pin is None or pin.digest != digest(current):
                found.append((tool, pin, current))
        for tool, pin, current in found:
            await self._announce(tool, pin, current)
        return {tool.key for tool, _, _ in found}

    async def _announce(self, tool: Offered, pin: PinRow | None, current: dict[str, Any]) -> None:
        """Record and announce a difference, unless it was already."""
        changed = DriftRow(
            server=tool.server,
            tool=tool.tool.name,
            digest=digest(current),
            seen_time=naive_utc(self._clock.now()),
        )
        payload = tool_pin_events_pb2.ToolPinDefinitionChanged(
            actor=event_actor(_SELF),
            server=tool.server,
            tool=tool.tool.name,
            approved_digest=pin.digest if pin is not None else "",
            current_digest=changed.digest,
            changed_fields=changed_fields(pin.definition if pin else {}, current),
            current=tool.tool,
        )
        if pin is not None:
            payload.approved.CopyFrom(tool_of(pin.definition))
        try:
            async with self._db.transaction() as session:
                known = await session.get(DriftRow, (changed.server, changed.tool, changed.digest))
                if known is not None:
                    return
                session.add(changed)
                await session.flush()
                self._publisher.publish(session, payload, subject=_subject(tool.server))
        except sqlalchemy.exc.IntegrityError:
            return  # another replica recorded it first, and announced it


def _pin(row: PinRow) -> toolpins_pb2.ToolPin:
    pin = toolpins_pb2.ToolPin(
        server=row.server, tool=row.tool, digest=row.digest, approved_by=row.approved_by
    )
    pin.approve_time.FromDatetime(aware_utc(row.approve_time))
    return pin


def _subject(server: str) -> str:
    return f"mcp/servers/{server}"
