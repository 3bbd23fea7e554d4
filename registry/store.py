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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine, delete, select

from registry.model import InstanceRecord, ServiceSpec
from registry.tables import (
    MIGRATIONS,
    InstanceRow,
    ServiceRow,
    instance_row,
    record_of,
    service_row,
    spec_of,
)

if TYPE_CHECKING:
    from registry.events import RegistryEvent

_T = TypeVar("_T")


class EventOutbox(Protocol):
    """Writes events into a transaction of the store (see :mod:`registry.outbox`)."""

    def add(self, session: Session, events: Sequence[RegistryEvent]) -> None:
        """Add ``events`` to the transaction of ``session``."""
        ...


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
            services = [spec_of(row) for row in session.exec(select(ServiceRow))]
            instances = [record_of(row) for row in session.exec(select(InstanceRow))]
        return StoredState(services=services, instances=instances)

    def _save(
        self, spec: ServiceSpec, instance: InstanceRecord, events: Sequence[RegistryEvent]
    ) -> None:
        with self._session() as session:
            session.merge(service_row(spec))
            session.merge(instance_row(instance))
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
