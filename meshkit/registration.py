"""Keeping a plugin registered with the registry.

A :class:`Registrar` registers the instance, renews its lease, registers again when the
registry has forgotten it (a restart, an expired lease), retries with backoff while the
registry is unreachable, and deregisters on close. A refusal (bad secret, a conflicting
route) is final: it is kept in :attr:`Registrar.refused` and ends :meth:`Registrar.wait`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random

import grpc
from google.protobuf import descriptor_pb2

from meshkit.errors import error_info
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls, dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger(__name__)

SECRET_METADATA_KEY = "plugmesh-registration-secret"
# Jitter from a generator of its own: the random module's global one is the application's
# (tests seed it), and a delay must not draw from it.
_JITTER = Random()
_FINAL = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def secret_metadata(secret: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata of a call to the registry: the registration secret, when set."""
    return ((SECRET_METADATA_KEY, secret),) if secret else ()


@dataclass(frozen=True)
class Registration:
    """What an instance tells the registry about itself."""

    service: str
    address: str
    version: str
    grpc_services: tuple[str, ...]
    file_descriptor_set: descriptor_pb2.FileDescriptorSet
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between retries, in seconds, with "equal jitter".

    The ``n``-th delay is drawn between half of ``initial * multiplier ** (n - 1)``
    (capped at ``maximum_seconds``) and all of it: replicas that lost the registry (or
    NATS) together do not come back in lockstep, and none retries sooner than half the
    exponential delay.

    Args:
        initial_seconds: The ceiling of the first delay.
        maximum_seconds: The ceiling of every delay.
        multiplier: How much the ceiling grows after each failure.
        random: A number in ``[0, 1)`` per delay; tests pass a fixed one.
    """

    initial_seconds: float = 0.2
    maximum_seconds: float = 5.0
    multiplier: float = 2.0
    random: Callable[[], float] = field(default=_JITTER.random, compare=False, repr=False)

    def delay(self, failures: int) -> float:
        """The delay after ``failures`` consecutive failed attempts (``failures >= 1``)."""
        ceiling = min(
            self.initial_seconds * self.multiplier ** max(failures - 1, 0), self.maximum_seconds
        )
        return ceiling / 2 * (1 + self.random())


class RegistrationRefused(Exception):
    """The registry refused the registration for good (bad secret, a conflict)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        super().__init__(f"registration refused: {code.name}: {message}")
        self.code = code
        self.reason = reason


class Registrar:
    """Registers one instance and keeps it registered until :meth:`close`."""

    def __init__(
        self,
        registration: Registration,
        *,
        registry_address: str,
        secret: str | None,
        backoff: Backoff | None = None,
        call_timeout_seconds: float = 5.0,
        tls: MeshTls | None = None,
    ) -> None:
        self._registration = registration
        self._tls = tls
        self._registry_address = registry_address
        self._metadata = secret_metadata(secret)
        self._backoff = backoff or Backoff()
        self._timeout = call_timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._instance_id = ""
        self.registered = asyncio.Event()
        self.refused: RegistrationRefused | None = None

    @property
    def instance_id(self) -> str:
        """The id the registry gave this instance; empty until registered."""
        return self._instance_id

    async def start(self) -> None:
        """Start registering in the background; returns at once. Safe to call twice."""
        if self._task is not None:
            return
        self._channel = dial(self._registry_address, self._tls)
        self._task = asyncio.create_task(self._run(), name="registrar")

    async def wait(self) -> None:
        """Return when the registration was refused for good (then :attr:`refused` is set)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop renewing and deregister. Safe to call twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        channel, self._channel = self._channel, None
        if channel is None:
            return
        if self._instance_id:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            request = registry_pb2.DeregisterInstanceRequest(instance_id=self._instance_id)
            try:
                await stub.DeregisterInstance(request, metadata=self._metadata, timeout=1.0)
            except grpc.aio.AioRpcError as exc:
                log.warning("deregistration failed", extra={"code": exc.code().name})
            self._instance_id = ""
            self.registered.clear()
        await channel.close()

    async def _run(self) -> None:
        assert self._channel is not None
        stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        failures = 0
        while True:
            try:
                renew_every = await self._register(stub)
                failures = 0
                await self._renew_until_forgotten(stub, renew_every)
            except RegistrationRefused as refused:
                self.refused = refused
                log.error(str(refused), extra={"reason": refused.reason})
                return
            except grpc.aio.AioRpcError as exc:
                failures += 1
                if self._tls is not None and exc.code() == grpc.StatusCode.UNAVAILABLE:
                    stub = await self._redial()
                delay = self._backoff.delay(failures)
                log.warning(
                    "registry call failed; retrying",
                    extra={"code": exc.code().name, "retry_in_seconds": round(delay, 2)},
                )
                self.registered.clear()
                await asyncio.sleep(delay)

    async def _redial(self) -> registry_pb2_grpc.RegistryServiceAsyncStub:
        # A channel presents the certificate read when it was made: after a failure, a
        # fresh one presents a renewed certificate (the old one may have expired).
        old, self._channel = self._channel, dial(self._registry_address, self._tls)
        if old is not None:
            await old.close()
        return registry_pb2_grpc.RegistryServiceStub(self._channel)

    async def _register(self, stub: registry_pb2_grpc.RegistryServiceAsyncStub) -> float:
        r = self._registration
        request = registry_pb2.RegisterInstanceRequest(
            service=r.service,
            address=r.address,
            version=r.version,
            grpc_services=r.grpc_services,
            file_descriptor_set=r.file_descriptor_set,
            metadata=r.metadata,
        )
        try:
            response = await stub.RegisterInstance(
                request, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _FINAL:
                info = error_info(exc)
                raise RegistrationRefused(
                    exc.code(), exc.details() or "", info.reason if info else ""
                ) from exc
            raise
        self._instance_id = response.instance.instance_id
        self.registered.set()
        lease = response.lease_duration.ToTimedelta().total_seconds() or 10.0
        log.info(
            "registered",
            extra={"instance_id": self._instance_id, "registry": self._registry_address},
        )
        # Renew three times per lease so one lost renewal never lets it lapse.
        return lease / 3

    async def _renew_until_forgotten(
        self, stub: registry_pb2_grpc.RegistryServiceAsyncStub, every_seconds: float
    ) -> None:
        request = registry_pb2.RenewLeaseRequest(instance_id=self._instance_id)
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await stub.RenewLease(request, metadata=self._metadata, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    log.warning("registry forgot this instance; registering again")
                    self.registered.clear()
                    return
                raise
