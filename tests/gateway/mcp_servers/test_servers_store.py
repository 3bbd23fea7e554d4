"""The upstream MCP servers in the gateway's database, on SQLite and on PostgreSQL: what
is stored comes back whole (secrets included), secrets are sealed at rest, pages follow
names, and a change records its event in the same transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.spec import HttpTransport, StdioTransport, UpstreamSpec
from gateway.mcpservers.core import McpServers
from gateway.mcpservers.model import McpServer
from gateway.mcpservers.sealing import Sealer
from gateway.mcpservers.store import ServerStore
from gateway.mcpservers.tables import MIGRATIONS
from meshkit.db import Database
from meshkit.errors import AlreadyExists, FailedPrecondition, NotFound
from meshkit.identity import Identity, PrincipalKind

ADMIN = Identity(PrincipalKind.MACHINE, "admin", admin=True)
SECRET_VALUE = "s3cr3t-value-of-the-header"


class Recorded:
    """A change sink that remembers what it was told."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, tuple[str, ...]]] = []

    def created(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        self.changes.append(("created", server.name, ()))

    def updated(
        self, session: AsyncSession, actor: Identity, server: McpServer, changed: Sequence[str]
    ) -> None:
        self.changes.append(("updated", server.name, tuple(changed)))

    def deleted(self, session: AsyncSession, actor: Identity, server: McpServer) -> None:
        self.changes.append(("deleted", server.name, ()))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade(MIGRATIONS)
    yield database
    await database.close()


@pytest.fixture
async def servers(database: Database) -> AsyncIterator[tuple[McpServers, Recorded]]:
    """The servers over ``database``; every spec is disabled, so nothing connects."""
    sink = Recorded()
    upstreams = Upstreams()
    yield McpServers(database, sink, upstreams, ServerStore(Sealer("mesh-secret"))), sink
    await upstreams.close()


def http(name: str, **fields: Any) -> UpstreamSpec:
    transport = HttpTransport("http://127.0.0.1:1/mcp", headers={"X-Key": SECRET_VALUE})
    return UpstreamSpec(name=name, transport=transport, enabled=False, **fields)


async def test_a_server_comes_back_whole_with_its_secrets(
    servers: tuple[McpServers, Recorded],
) -> None:
    core, sink = servers
    spec = http("search", include_tools=("q*",), call_timeout_seconds=2.5, max_concurrent_calls=3)
    stdio = UpstreamSpec(
        name="files",
        transport=StdioTransport("npx", ("-y", "x"), env={"TOKEN": SECRET_VALUE}, cwd="/srv"),
        enabled=False,
    )

    await core.create(ADMIN, spec, description="web search")
    await core.create(ADMIN, stdio, description="")

    assert (await core.get("search")).spec == spec
    assert (await core.get("search")).description == "web search"
    assert (await core.get("files")).spec == stdio
    assert sink.changes == [("created", "search", ()), ("created", "files", ())]


async def test_secrets_are_sealed_at_rest(
    servers: tuple[McpServers, Recorded], database: Database
) -> None:
    core, _ = servers
    await core.create(ADMIN, http("search"), description="")

    async with database.read() as session:
        row = (await session.execute(text("SELECT secrets, secret_names FROM mcp_servers"))).one()

    assert SECRET_VALUE not in str(row)
    assert "X-Key" in str(row.secret_names)


async def test_secrets_do_not_open_under_another_registration_secret(
    servers: tuple[McpServers, Recorded], database: Database
) -> None:
    core, _ = servers
    await core.create(ADMIN, http("search"), description="")
    other = ServerStore(Sealer("another-secret"))

    async with database.read() as session:
        listed = await other.all(session)

    assert listed == []  # left out (and logged), not served with wrong secrets


async def test_secrets_need_a_registration_secret(database: Database) -> None:
    upstreams = Upstreams()
    core = McpServers(database, Recorded(), upstreams, ServerStore(Sealer(None)))
    try:
        with pytest.raises(FailedPrecondition):
            await core.create(ADMIN, http("search"), description="")
        plain = UpstreamSpec(name="plain", transport=HttpTransport("http://127.0.0.1:1/mcp"))
        await core.create(ADMIN, dataclasses.replace(plain, enabled=False), description="")
    finally:
        await upstreams.close()

    assert (await core.get("plain")).spec.transport == HttpTransport("http://127.0.0.1:1/mcp")


async def test_pages_follow_names(servers: tuple[McpServers, Recorded]) -> None:
    core, _ = servers
    for name in ("c", "a", "e", "b", "d"):
        await core.create(ADMIN, http(name), description="")

    first, more = await core.page(after=None, limit=2)
    second, _ = await core.page(after=first[-1].name, limit=2)
    last, done = await core.page(after=second[-1].name, limit=2)

    assert [s.name for s in (*first, *second, *last)] == ["a", "b", "c", "d", "e"]
    assert more
    assert not done


async def test_a_change_names_the_fields_that_changed_and_a_same_one_changes_nothing(
    servers: tuple[McpServers, Recorded],
) -> None:
    core, sink = servers
    created = await core.create(ADMIN, http("search"), description="")

    same = await core.update(ADMIN, "search", lambda old: old)
    changed = await core.update(
        ADMIN,
        "search",
        lambda old: dataclasses.replace(
            old, spec=dataclasses.replace(old.spec, max_concurrent_calls=4), description="new"
        ),
    )

    assert same.update_time == created.update_time
    assert changed.update_time >= created.update_time
    assert (await core.get("search")).spec.max_concurrent_calls == 4
    assert sink.changes[-1] == ("updated", "search", ("description", "max_concurrent_calls"))
    assert len(sink.changes) == 2


async def test_names_are_unique_and_a_missing_one_is_not_found(
    servers: tuple[McpServers, Recorded],
) -> None:
    core, sink = servers
    await core.create(ADMIN, http("search"), description="")

    with pytest.raises(AlreadyExists):
        await core.create(ADMIN, http("search"), description="")
    await core.delete(ADMIN, "search")
    with pytest.raises(NotFound):
        await core.get("search")
    with pytest.raises(NotFound):
        await core.delete(ADMIN, "search")

    assert sink.changes == [("created", "search", ()), ("deleted", "search", ())]
