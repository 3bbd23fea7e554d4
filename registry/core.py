"""The registry's state and rules, independent of gRPC.

:class:`Registry` keeps every service and instance in memory, writes registrations
through to the store, watches every instance's health, expires leases, tells watchers
about every change, and writes its events to the store's outbox with the changes (the
ones of health changes right after).

Mutations that touch the database (register, deregister, expire) run one at a time under
a lock, so the conflict check and the write it guards are atomic. Health updates and lease
renewals only touch memory and never wait.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import Future
from dataclasses import replace
from datetime import datetime, timedelta

import grpc

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from meshkit.registration import Backoff
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls
from meshkit.tracing import current_trace
from registry import schemas
from registry.broadcast import Broadcaster, Subscription
from registry.conflicts import check_conflicts
from registry.events import RegistryEvent as Event
from registry.events import RegistryEventType as EventType
from registry.health_watch import HealthWatcher
from registry.lookup import check_dependencies, event_services, find_service
from registry.model import (
    ChangeKind,
    DependencyCheck,
    Health,
    Instance,
    InstanceRecord,
    Registration,
    ServiceChange,
    ServiceSpec,
    ServiceView,
)
from registry.reflection_client import DescriptorFetcher, ReflectionError, fetch_descriptors
from registry.store import RegistryStore
from registry.validation import validate_registration

log = logging.getLogger(__name__)


class Registry:
    """Services, instances and their health.

    Args:
        store: Where registrations are persisted; opened by :meth:`start`, closed by
            :meth:`close`.
        lease_seconds: How long a registration or renewal keeps an instance registered.
        sweep_interval_seconds: How often expired leases are looked for; defaults to a
            fifth of the lease, at most one second.
        fetch: Fetches descriptors over reflection when a registration has none.
        reflection_timeout_seconds: Deadline of that fetch.
        health_backoff: Delays between reconnections of a broken health watch.
        watcher_capacity: Changes a watcher may leave unread before its stream is ended.
        clock: Source of the current time.
        tls: Mutual TLS of the health watches; plaintext when ``None``.
    """

    def __init__(
        self,
        store: RegistryStore,
        *,
        lease_seconds: float = 10.0,
        sweep_interval_seconds: float | None = None,
        fetch: DescriptorFetcher = fetch_descriptors,
        reflection_timeout_seconds: float = 5.0,
        health_backoff: Backoff | None = None,
        watcher_capacity: int = 1024,
        clock: Clock = SYSTEM_CLOCK,
        tls: MeshTls | None = None,
    ) -> None:
        self._store = store
        self._lease = timedelta(seconds=lease_seconds)
        self._sweep_interval = sweep_interval_seconds or min(lease_seconds / 5, 1.0)
        self._fetch = fetch
        self._reflection_timeout = reflection_timeout_seconds
        self._clock = clock
        self._health = HealthWatcher(self._on_health, backoff=health_backoff, tls=tls)
        self._broadcaster = Broadcaster(capacity=watcher_capacity)
        self._lock = asyncio.Lock()
        self._specs: dict[str, ServiceSpec] = {}
        self._instances: dict[str, Instance] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False

    @property
    def lease_seconds(self) -> float:
        """How long a lease lasts."""
        return self._lease.total_seconds()

    async def start(self) -> None:
        """Open the store, load the registrations it holds and start watching them.

        Loaded instances start with health UNKNOWN and a fresh lease, so that live ones
        have time to renew. Safe to call twice.
        """
        if self._started:
            return
        self._started = True
        await self._store.open()
        state = await self._store.load()
        now = self._clock.now()
        self._specs = {spec.name: spec for spec in state.services}
        for record in state.instances:
            if record.service not in self._specs:
                log.warning(
                    "dropping an instance of an unknown service",
                    extra={"id": record.instance_id, "service": record.service},
                )
                continue
            record = replace(record, lease_expire_time=now + self._lease)
            self._instances[record.instance_id] = Instance(record, Health.UNKNOWN, now)
        served = {instance.service for instance in self._instances.values()}
        self._specs = {name: spec for name, spec in self._specs.items() if name in served}
        for instance in self._instances.values():
            await self._health.watch(instance.instance_id, instance.address)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="registry-lease-sweeper")
        log.info(
            "registry state loaded",
            extra={"services": len(self._specs), "instances": len(self._instances)},
        )

    def end_watches(self) -> None:
        """End every watch subscription, now and to come, ahead of shutting down."""
        self._broadcaster.close()

    async def close(self) -> None:
        """End watches, stop health checks and sweeping, close the store. Safe to call twice."""
        self.end_watches()
        if not self._started:
            return
        self._started = False
        sweeper, self._sweeper = self._sweeper, None
        await cancel_and_wait(sweeper)
        await self._health.close()
        await self._store.close()

    async def register(self, registration: Registration) -> Instance:
        """Register an instance, or refresh the registration at the same address.

        Raises:
            InvalidArgument: a field is malformed; the error names it.
            AlreadyExists: another service owns one of its gRPC services or HTTP routes.
            Unavailable: its descriptors were to be fetched and it cannot be reached.
            FailedPrecondition: it cannot describe itself over reflection.
        """
        validate_registration(registration)
        contract = await self._contract(registration)
        spec = ServiceSpec(
            name=registration.service,
            version=registration.version or contract.version,
            grpc_services=contract.grpc_services,
            produces=contract.produces,
            consumes=contract.consumes,
            dependencies=contract.dependencies,
            routes=contract.routes,
            schema=contract.schema,
            schema_digest=contract.schema_digest,
        )
        async with self._lock:
            check_conflicts(spec, self._specs.values())
            now = self._clock.now()
            existing = self._instance_at(spec.name, registration.address)
            record = InstanceRecord(
                instance_id=existing.instance_id if existing else uuid.uuid4().hex,
                service=spec.name,
                address=registration.address,
                version=spec.version,
                metadata=dict(registration.metadata),
                register_time=existing.record.register_time if existing else now,
                lease_expire_time=now + self._lease,
            )
            current = self._instances.get(record.instance_id)
            instance = Instance(
                record,
                current.health if current else Health.UNKNOWN,
                current.health_change_time if current else now,
            )
            event = Event(EventType.REGISTERED, instance, now, trace=current_trace())
            await self._store.save(spec, record, [event])
            # Health reports do not wait for the lock: one may have landed during the save
            # (a restarted instance's health watch reconnecting as it registers again).
            # Writing back the health read before the save would lose it for good.
            latest = self._instances.get(record.instance_id)
            if latest is not None:
                instance = replace(latest, record=record)
            self._specs[spec.name] = spec
            self._instances[record.instance_id] = instance
            await self._health.watch(record.instance_id, record.address)
            self._changed(spec.name)
        log.info(
            "instance registered",
            extra={"service": spec.name, "address": record.address, "id": record.instance_id},
        )
        return instance

    def service_of(self, instance_id: str) -> str | None:
        """The service of a registered instance; ``None`` when it is unknown."""
        instance = self._instances.get(instance_id)
        return instance.record.service if instance is not None else None

    def renew(self, instance_id: str) -> datetime:
        """Renew a lease and return when the new one runs out.

        Renewals are pushed only to the watchers that asked for them (a view of the
        leases): they change nothing a router cares about.

        Raises:
            NotFound: the instance is unknown or its lease has run out.
        """
        instance = self._instances.get(instance_id)
        now = self._clock.now()
        if instance is None or instance.record.lease_expire_time <= now:
            raise NotFound(
                f"instance {instance_id!r} is not registered",
                reason="INSTANCE_NOT_FOUND",
                metadata={"instance_id": instance_id},
            )
        record = replace(instance.record, lease_expire_time=now + self._lease)
        self._instances[instance_id] = replace(instance, record=record)
        if self._broadcaster.renewal_watchers:
            spec = self._specs[record.service]
            self._broadcaster.publish(
                ServiceChange(ChangeKind.UPSERTED, spec.name, self._view(spec), renewal=True)
            )
        return record.lease_expire_time

    async def deregister(self, instance_id: str) -> None:
        """Remove an instance; unknown ids are ignored."""
        async with self._lock:
            instance = self._instances.get(instance_id)
            if instance is not None:
                await self._remove(instance, EventType.DEREGISTERED)

    async def expire_leases(self) -> list[str]:
        """Remove every instance whose lease has run out and return their ids."""
        async with self._lock:
            now = self._clock.now()
            expired = [
                instance
                for instance in self._instances.values()
                if instance.record.lease_expire_time <= now
            ]
            for instance in expired:
                await self._remove(instance, EventType.EXPIRED)
        return [instance.instance_id for instance in expired]

    def get(self, name: str) -> ServiceView:
        """Return a service by short name or by the full name of one of its gRPC services.

        Raises:
            NotFound: no such service is registered.
        """
        spec = find_service(self._specs.values(), name)
        if spec is None:
            raise NotFound(
                f"service {name!r} is not registered",
                reason="SERVICE_NOT_FOUND",
                metadata={"service": name},
            )
        return self._view(spec)

    def list_services(self) -> list[ServiceView]:
        """Return every service, ordered by name."""
        return [self._view(self._specs[name]) for name in sorted(self._specs)]

    def instance(self, instance_id: str) -> Instance | None:
        """Return an instance by id, or ``None``."""
        return self._instances.get(instance_id)

    def subscribe(self, *, renewals: bool = False) -> tuple[list[ServiceView], Subscription]:
        """Return every service now and a subscription to every change after this moment,
        lease renewals included when ``renewals``."""
        # No await between the snapshot and the subscription: no change falls in between.
        return self.list_services(), self._broadcaster.subscribe(renewals=renewals)

    def event_services(self, event_type: str) -> tuple[list[str], list[str]]:
        """Return the names of the services producing and consuming ``event_type``."""
        return event_services(self._specs.values(), event_type)

    def check_dependencies(self, name: str) -> list[DependencyCheck]:
        """Check every dependency a service declares.

        Raises:
            NotFound: no such service is registered.
        """
        view = self.get(name)
        return check_dependencies(view.spec, self.list_services())

    async def _contract(self, registration: Registration) -> schemas.Contract:
        services = tuple(s for s in registration.grpc_services if not schemas.is_infrastructure(s))
        if registration.file_descriptor_set is not None:
            try:
                files = schemas.parse_descriptor_set(registration.file_descriptor_set)
                return schemas.read_contract(files, services)
            except schemas.SchemaError as exc:
                raise InvalidArgument(
                    str(exc), reason="INVALID_SCHEMA", metadata={"field": exc.field}
                ) from exc
        try:
            fetched = await self._fetch(
                registration.address, services, timeout_seconds=self._reflection_timeout
            )
            return schemas.read_contract(fetched.files, fetched.grpc_services)
        except ReflectionError as exc:
            metadata = {"address": registration.address}
            message = f"cannot fetch the descriptors of {registration.address}: {exc}"
            if exc.code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}:
                raise Unavailable(
                    message, reason="INSTANCE_UNREACHABLE", metadata=metadata
                ) from exc
            raise FailedPrecondition(
                message, reason="REFLECTION_FAILED", metadata=metadata
            ) from exc
        except schemas.SchemaError as exc:
            raise FailedPrecondition(
                f"the descriptors served by {registration.address} are unusable: {exc}",
                reason="INVALID_SCHEMA",
                metadata={"address": registration.address},
            ) from exc

    def _instance_at(self, service: str, address: str) -> Instance | None:
        for instance in self._instances.values():
            if instance.service == service and instance.address == address:
                return instance
        return None

    async def _remove(self, instance: Instance, event_type: EventType) -> None:
        service = instance.service
        last = not any(
            other.service == service and other.instance_id != instance.instance_id
            for other in self._instances.values()
        )
        # Unwatched first, so that no health event of it is written after its removal.
        await self._health.unwatch(instance.instance_id)
        instance = self._instances.get(instance.instance_id, instance)
        event = Event(event_type, instance, self._clock.now(), trace=current_trace())
        try:
            await self._store.delete_instance(
                instance.instance_id, drop_service=service if last else None, events=[event]
            )
        except BaseException:
            await self._health.watch(instance.instance_id, instance.address)  # still here
            raise
        del self._instances[instance.instance_id]
        if last:
            self._specs.pop(service, None)
        self._changed(service)
        log.info(
            "instance removed",
            extra={"service": service, "id": instance.instance_id, "why": event_type.value},
        )

    def _on_health(self, instance_id: str, health: Health) -> None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.health is health:
            return
        now = self._clock.now()
        updated = replace(instance, health=health, health_change_time=now)
        self._instances[instance_id] = updated
        self._changed(instance.service)
        event = Event(EventType.HEALTH_CHANGED, updated, now, instance.health)
        self._store_event(event)
        log.info(
            "instance health changed",
            extra={"id": instance_id, "health": health.value, "was": instance.health.value},
        )

    def _store_event(self, event: Event) -> None:
        """Write an event of a change that is not stored (health) in a transaction of its own."""
        try:
            written = self._store.add_events([event])
        except RuntimeError:  # the store is closed: the registry is stopping
            log.warning("registry event not stored: the store is closed", extra=_fields(event))
            return
        if written is not None:
            written.add_done_callback(lambda done: _log_failure(done, event))

    def _changed(self, service: str) -> None:
        spec = self._specs.get(service)
        if spec is None:
            self._broadcaster.publish(ServiceChange(ChangeKind.REMOVED, service))
        else:
            view = self._view(spec)
            self._broadcaster.publish(ServiceChange(ChangeKind.UPSERTED, service, view))

    def _view(self, spec: ServiceSpec) -> ServiceView:
        instances = sorted(
            (i for i in self._instances.values() if i.service == spec.name),
            key=lambda i: (i.record.register_time, i.instance_id),
        )
        return ServiceView(spec, tuple(instances))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.expire_leases()
            except Exception:
                # A failing database must not stop expiry for good; the next sweep retries.
                log.exception("expiring leases failed")


def _fields(event: Event) -> dict[str, str]:
    return {"event_type": event.type.value, "instance_id": event.instance.instance_id}


def _log_failure(written: Future[None], event: Event) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.error(
            "storing a registry event failed",
            exc_info=written.exception(),
            extra=_fields(event),
        )
