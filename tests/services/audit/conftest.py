"""Fixtures: the audit API (gRPC on port 0) and the whole audit process recording the
events of a real nats-server.

Every test that uses ``audit`` or ``recording`` runs on SQLite and on PostgreSQL
(``database_url``, see tests/support/databases.py), in a database of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from launcher.natsd import NatsServer
from meshkit.config import MeshConfig
from meshkit.db import Database
from meshkit.events import EventSettings
from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from meshkit.server import PluginServer
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.app import AuditPlugin, api_server, build
from services.audit.config import AuditConfig
from services.audit.core import AuditLog
from services.audit.model import EntryDraft

SECRET = "audit-test-secret"

ADMIN = Identity(PrincipalKind.USER, "admin-1", admin=True, email="admin@example.com")
ALICE = Identity(PrincipalKind.USER, "alice", email="alice@example.com")
BOB = Identity(PrincipalKind.USER, "bob")
ROBOT = Identity(PrincipalKind.MACHINE, "mu-1")
GATEWAY = Identity(PrincipalKind.SERVICE, "gateway")

Metadata = tuple[tuple[str, str], ...]


def signed(identity: Identity) -> Metadata:
    """The metadata the gateway sends for ``identity``."""
    key = signing_key(SECRET)
    assert key is not None
    return to_metadata(identity, key)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self) -> None:
        self.time = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.time

    def advance(self, **delta: float) -> None:
        self.time += dt.timedelta(**delta)


@dataclass
class Audit:
    """A running audit server and a client for it.

    Attributes:
        server: The gRPC server.
        store: The chain behind it.
        stub: A client of the server.
        clock: The clock that stamps entries; tests move it.
        process: The whole process (event bus, pruner), when it runs; ``None`` for the
            API alone.
        nats_url: Where its NATS runs, when it consumes events.
    """

    server: PluginServer
    store: AuditLog
    stub: audit_pb2_grpc.AuditServiceAsyncStub
    clock: FakeClock
    process: AuditPlugin | None = None
    nats_url: str = ""

    async def create(self, identity: Identity = ADMIN, **fields: Any) -> audit_pb2.AuditEntry:
        """Append an entry over the API as ``identity``; ``action`` defaults to test.action."""
        fields.setdefault("action", "test.action")
        request = audit_pb2.CreateAuditEntryRequest(entry=audit_pb2.AuditEntry(**fields))
        response = await self.stub.CreateAuditEntry(request, metadata=signed(identity))
        return response.entry

    async def verify(self, start: int = 0, end: int = 0) -> audit_pb2.VerifyAuditChainResponse:
        """VerifyAuditChain as an admin."""
        request = audit_pb2.VerifyAuditChainRequest(start_sequence=start, end_sequence=end)
        return await self.stub.VerifyAuditChain(request, metadata=signed(ADMIN))

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        """Run SQL straight on the audit database, as a tamperer would; the rows it returns.

        An UPDATE or DELETE must change at least one row.
        """
        async with self.store.database.engine.begin() as connection:
            result = await connection.execute(text(statement), params)
            if result.returns_rows:
                return list(result.all())
            assert result.rowcount > 0, f"{statement!r} changed nothing"
            return []


def audit_config(data_dir: Path, nats_url: str, **overrides: str) -> AuditConfig:
    """Settings for a test audit process in ``data_dir``."""
    env = {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1",
        **overrides,
    }
    config = AuditConfig.from_env(env)
    assert isinstance(config.mesh, MeshConfig)
    assert isinstance(config.events, EventSettings)
    return config


@contextlib.asynccontextmanager
async def running_audit(
    tmp_path: Path, nats_server: NatsServer, *, registry_address: str = "", **env: str
) -> AsyncIterator[Audit]:
    """Start an audit process with settings ``env`` on top of the test defaults; it
    registers only when given a registry."""
    clock = FakeClock()
    if registry_address:
        env["PLUGMESH_REGISTRY_ADDRESS"] = registry_address
    config = audit_config(tmp_path / "data", nats_server.url, **env)
    process = build(config, address="127.0.0.1:0", register=bool(registry_address), clock=clock)
    async with serving(process.server) as stub:
        yield Audit(process.server, process.audit_log, stub, clock, process, nats_server.url)


@contextlib.asynccontextmanager
async def serving_api(tmp_path: Path, **env: str) -> AsyncIterator[Audit]:
    """Start the audit API alone, without the event bus: for tests not about events."""
    clock = FakeClock()
    config = audit_config(tmp_path / "data", "nats://127.0.0.1:1", **env)
    store = AuditLog(Database(config.database_url), clock=clock)
    server = api_server(store, config, address="127.0.0.1:0", register=False)
    async with serving(server) as stub:
        yield Audit(server, store, stub, clock)


@contextlib.asynccontextmanager
async def serving(server: PluginServer) -> AsyncIterator[audit_pb2_grpc.AuditServiceAsyncStub]:
    """Start ``server``; a client of it; stop both after."""
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield audit_pb2_grpc.AuditServiceStub(channel)
    finally:
        await server.stop(0)


@pytest.fixture
async def audit(tmp_path: Path, database_url: str) -> AsyncIterator[Audit]:
    """The audit API with a client, on each database backend (no event bus)."""
    async with serving_api(tmp_path, PLUGMESH_DATABASE_URL=database_url) as started:
        yield started


@pytest.fixture
async def recording(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> AsyncIterator[Audit]:
    """The whole audit process, recording the events of a real nats-server, on each
    database backend."""
    async with running_audit(tmp_path, nats_server, PLUGMESH_DATABASE_URL=database_url) as started:
        yield started


async def append_many(audit: Audit, count: int, **fields: Any) -> None:
    """Append ``count`` entries straight through the store, in one transaction."""
    store = audit.store
    async with store.database.transaction() as session:
        for _ in range(count):
            draft = EntryDraft(entry_id=str(uuid.uuid4()), action="bulk.append", **fields)
            await store.append(session, draft, assume_new=True)
