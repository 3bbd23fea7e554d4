"""Persistence of registrations with sqlmodel, so they survive a registry restart.

Only what registration declares is stored: each service's contract and each instance's
address, version and metadata. Health and lease renewals live in memory; after a restart
health starts UNKNOWN and every lease starts afresh.

Every database call runs on one worker thread, in submission order, so the event loop
never blocks on the database and writes are applied in the order they were made. With an
outbox (:class:`~registry.outbox.RegistryOutbox`), the events of a change are written in
the change's own transaction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import JSON, Column, LargeBinary, MetaData
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel, create_engine, delete, select

from meshkit.migrations import Migrations
from registry.model import Dependency, HttpRoute, InstanceRecord, ServiceSpec

if TYPE_CHECKING:
    from registry.events import RegistryEvent

_T = TypeVar("_T")


class EventOutbox(Protocol):
    """Writes events into a transaction of the store (see :mod:`registry.outbox`)."""

    def add(self, session: Session, events: Sequence[RegistryEvent]) -> None:
        """Add ``events`` to the transaction of ``session``."""
        ...


class _Table(SQLModel, registry=registry()):
    """Base of the registry's tables: their own metadata, not sqlmodel's global one."""


class ServiceRow(_Table, table=True):
    """A service's contract."""

    __tablename__ = "registry_services"

    name: str = Field(primary_key=True)
    version: str
    grpc_services: list[str] = Field(sa_column=Column(JSON, nullable=False))
    produces: list[str] = Field(sa_column=Column(JSON, nullable=False))
    consumes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    dependencies: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    routes: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    schema_bytes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    schema_digest: str


class InstanceRow(_Table, table=True):
    """One registered instance."""

    __tablename__ = "registry_instances"

    instance_id: str = Field(primary_key=True)
    service: str = Field(index=True)
    address: str
    version: str
    metadata_: dict[str, str] = Field(sa_column=Column("metadata", JSON, nullable=False))
    register_time: datetime
    lease_expire_time: datetime


#: The registry's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied when the store opens.
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_registry", metadata)


@dataclass(frozen=True)
class StoredState:
    """Everything the store holds."""

    services: list[ServiceSpec]
    instances: list[InstanceRecord]


class RegistryStore:
    """Stores services and instances in any SQLAlchemy database.

    Args:
        url: A SQLAlchemy URL; for a SQLite file its directory is created.
        outbox: Where the events of each change are written, in its transaction; without
            one, events are not stored.
    """

    def __init__(self, url: str, *, outbox: EventOutbox | None = None) -> None:
        self._url = url
        self._outbox = outbox
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Connect and bring the tables to their newest revision. Safe to call twice."""
        if self._engine is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-store")
        self._engine = await self._run(_create_engine, self._url)

    async def close(self) -> None:
        """Finish pending writes and disconnect. Safe to call twice."""
        # New writes are refused from here on; those already queued run first, since the
        # one worker takes them in order and the engine is disposed after them.
        executor, self._executor = self._executor, None
        if executor is None:
            return
        engine = self._engine
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(executor, engine.dispose)
        self._engine = None
        executor.shutdown(wait=True)

    async def load(self) -> StoredState:
        """Return every stored service and instance."""
        return await self._run(self._load)

    async def save(
        self, spec: ServiceSpec, instance: InstanceRecord, events: Sequence[RegistryEvent] = ()
    ) -> None:
        """Store a service's contract and one of its instances, and ``events``, in one
        transaction."""
        await self._run(self._save, spec, instance, events)

    async def delete_instance(
        self,
        instance_id: str,
        *,
        drop_service: str | None = None,
        events: Sequence[RegistryEvent] = (),
    ) -> None:
        """Delete an instance and, when named, its service, and store ``events``, in one
        transaction."""
        await self._run(self._delete, instance_id, drop_service, events)

    def add_events(self, events: Sequence[RegistryEvent]) -> Future[None] | None:
        """Store ``events`` in a transaction of their own, after the writes already asked for.

        Does not wait: returns the future of the write, or ``None`` without an outbox.
        """
        if self._outbox is None:
            return None
        return self._submit(self._add_events, events)

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.wrap_future(self._submit(function, *args))

    def _submit(self, function: Callable[..., _T], *args: Any) -> Future[_T]:
        if self._executor is None:
            raise RuntimeError("the registry store is not open")
        return self._executor.submit(functools.partial(function, *args))

    def _session(self) -> Session:
        if self._engine is None:
            raise RuntimeError("the registry store is not open")
        return Session(self._engine, expire_on_commit=False)

    def _load(self) -> StoredState:
        with self._session() as session:
            services = [_spec(row) for row in session.exec(select(ServiceRow))]
            instances = [_record(row) for row in session.exec(select(InstanceRow))]
        return StoredState(services=services, instances=instances)

    def _save(
        self, spec: ServiceSpec, instance: InstanceRecord, events: Sequence[RegistryEvent]
    ) -> None:
        with self._session() as session:
            session.merge(_service_row(spec))
            session.merge(_instance_row(instance))
            self._write_events(session, events)
            session.commit()

    def _delete(
        self, instance_id: str, drop_service: str | None, events: Sequence[RegistryEvent]
    ) -> None:
        with self._session() as session:
            session.exec(delete(InstanceRow).where(InstanceRow.instance_id == instance_id))  # type: ignore[arg-type]  # sqlmodel types the column as str
            if drop_service is not None:
                session.exec(delete(ServiceRow).where(ServiceRow.name == drop_service))  # type: ignore[arg-type]  # sqlmodel types the column as str
            self._write_events(session, events)
            session.commit()

    def _add_events(self, events: Sequence[RegistryEvent]) -> None:
        with self._session() as session:
            self._write_events(session, events)
            session.commit()

    def _write_events(self, session: Session, events: Sequence[RegistryEvent]) -> None:
        if self._outbox is not None and events:
            self._outbox.add(session, events)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # The one worker thread is not the thread that created the engine.
        connect_args["check_same_thread"] = False
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=connect_args)
    with engine.begin() as connection:
        MIGRATIONS.upgrade(connection)
    return engine


def _service_row(spec: ServiceSpec) -> ServiceRow:
    return ServiceRow(
        name=spec.name,
        version=spec.version,
        grpc_services=list(spec.grpc_services),
        produces=list(spec.produces),
        consumes=list(spec.consumes),
        dependencies=[
            {"service": d.service, "version_range": d.version_range, "optional": d.optional}
            for d in spec.dependencies
        ],
        routes=[{"method": r.method, "path": r.path, "rpc": r.rpc} for r in spec.routes],
        schema_bytes=spec.schema,
        schema_digest=spec.schema_digest,
    )


def _spec(row: ServiceRow) -> ServiceSpec:
    return ServiceSpec(
        name=row.name,
        version=row.version,
        grpc_services=tuple(row.grpc_services),
        produces=tuple(row.produces),
        consumes=tuple(row.consumes),
        dependencies=tuple(
            Dependency(str(d["service"]), str(d["version_range"]), bool(d["optional"]))
            for d in row.dependencies
        ),
        routes=tuple(HttpRoute(r["method"], r["path"], r["rpc"]) for r in row.routes),
        schema=row.schema_bytes,
        schema_digest=row.schema_digest,
    )


def _instance_row(record: InstanceRecord) -> InstanceRow:
    return InstanceRow(
        instance_id=record.instance_id,
        service=record.service,
        address=record.address,
        version=record.version,
        metadata_=dict(record.metadata),
        register_time=record.register_time,
        lease_expire_time=record.lease_expire_time,
    )


def _record(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        instance_id=row.instance_id,
        service=row.service,
        address=row.address,
        version=row.version,
        metadata=dict(row.metadata_),
        register_time=row.register_time,
        lease_expire_time=row.lease_expire_time,
    )
