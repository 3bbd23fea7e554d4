"""Payloads of event types declared outside ``protos/``, read from the producer's contract.

A plugin written in any language may publish events whose payload message it declares
in its own contract (``(plugmesh.options.v1.event)`` on a message of its .proto files);
this process has no generated code for it. The registry holds every plugin's contract,
so :class:`ContractPayloads` fetches the producer's (the service named by the event's
``source``, ``/plugmesh/<service>``) with ``GetServiceSchema``, and decodes the payload
with it: the audit entry then records the payload's ``actor`` and its fields as JSON.

Contracts are cached per service. A type the cached contract lacks is looked up again at
most every ``refetch_after_seconds`` (a plugin may have registered a new version); a
registry that does not answer in time leaves the payload undecoded, and the entry is
recorded as before (the system as actor, the payload's bytes as details).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.message import DecodeError

from meshkit.descriptors import PoolError, build_pool
from meshkit.events import ReceivedEvent
from meshkit.events.envelope import event_type_of
from meshkit.events.errors import NotAnEventPayload
from meshkit.registration import SECRET_METADATA_KEY
from meshkit.tls import MeshTls, dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["ContractPayloads", "RegistrySchemas", "SchemaSource"]

log = logging.getLogger(__name__)


class SchemaSource(Protocol):
    """Gives a service's contract."""

    async def schema(self, service: str) -> descriptor_pb2.FileDescriptorSet | None:
        """The files of ``service``'s contract; ``None`` when it cannot be had now."""
        ...


class RegistrySchemas:
    """:class:`SchemaSource` over the registry's ``GetServiceSchema``.

    Args:
        address: The registry.
        secret: The mesh registration secret, sent as ``GetServiceSchema`` is internal.
        timeout_seconds: How long one lookup may take.
        tls: Mutual TLS to the registry; plaintext when ``None``.
    """

    def __init__(
        self,
        address: str,
        secret: str | None,
        *,
        timeout_seconds: float = 2.0,
        tls: MeshTls | None = None,
    ) -> None:
        self._address = address
        self._tls = tls
        self._metadata = ((SECRET_METADATA_KEY, secret),) if secret else ()
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def schema(self, service: str) -> descriptor_pb2.FileDescriptorSet | None:
        if self._channel is None:
            self._channel = dial(self._address, self._tls)
        stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        try:
            response = await stub.GetServiceSchema(
                registry_pb2.GetServiceSchemaRequest(service=service),
                metadata=self._metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "contract of an event's producer not available",
                extra={"service": service, "code": exc.code().name},
            )
            return None
        return response.file_descriptor_set

    async def close(self) -> None:
        """Close the channel. Safe to call twice."""
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


class ContractPayloads:
    """Decodes payloads with the contracts of their producers.

    Args:
        source: Where contracts come from.
        refetch_after_seconds: The least time between two lookups of one service.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        source: SchemaSource,
        *,
        refetch_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._refetch_after = refetch_after_seconds
        self._clock = clock
        self._pools: dict[str, descriptor_pool.DescriptorPool] = {}
        self._fetched_at: dict[str, float] = {}

    async def decode(self, event: ReceivedEvent) -> message.Message | None:
        """The payload of ``event`` as its producer's contract declares it, or ``None``
        when the contract cannot be had, lacks the type, or declares another event type."""
        service = event.source.rstrip("/").rpartition("/")[2]
        type_name = event.envelope.data.TypeName()
        if not service or not type_name:
            return None
        cls = self._class(service, type_name)
        if cls is None and await self._refresh(service):
            cls = self._class(service, type_name)
        if cls is None:
            return None
        payload = cls()
        try:
            payload.ParseFromString(event.envelope.data.value)
            declared = event_type_of(payload)
        except (DecodeError, NotAnEventPayload):
            return None
        return payload if declared == event.type else None

    def _class(self, service: str, type_name: str) -> type[message.Message] | None:
        pool = self._pools.get(service)
        if pool is None:
            return None
        try:
            return message_factory.GetMessageClass(pool.FindMessageTypeByName(type_name))
        except KeyError:
            return None

    async def _refresh(self, service: str) -> bool:
        now = self._clock()
        last = self._fetched_at.get(service)
        if last is not None and now - last < self._refetch_after:
            return False
        self._fetched_at[service] = now
        files = await self._source.schema(service)
        if files is None:
            return False
        try:
            pool, _ = build_pool(files.file)
        except PoolError as exc:
            log.warning(
                "contract of an event's producer does not build",
                extra={"service": service, "error": str(exc)},
            )
            return False
        self._pools[service] = pool
        return True
