"""The ``auth.failed`` events a mesh's gateways published, read from the event stream."""

from __future__ import annotations

import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from meshkit.events import parse_event, subject_of, unpack_payload
from meshkit.events.streams import EVENTS_STREAM
from plugmesh.events.v1 import auth_events_pb2, event_pb2
from tests.gateway.auth.mesh import Mesh
from tests.support.waiting import eventually

__all__ = ["failures_in_stream", "published"]


async def failures_in_stream(auth_mesh: Mesh) -> list[tuple[event_pb2.Event, bytes]]:
    """Every auth.failed event in the stream, with its raw bytes."""
    nc = await nats.connect(auth_mesh.nats.url)
    try:
        js = nc.jetstream()
        consumer = await js.add_consumer(
            EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                filter_subject=subject_of("auth.failed"),
                inactive_threshold=30.0,
            ),
        )
        assert consumer.name is not None
        pending = consumer.num_pending or 0
        subscription = await js.pull_subscribe_bind(consumer=consumer.name, stream=EVENTS_STREAM)
        found: list[tuple[event_pb2.Event, bytes]] = []
        while len(found) < pending:
            try:
                messages = await subscription.fetch(pending - len(found), timeout=5)
            except nats.errors.TimeoutError:
                break
            found += [(parse_event(m.data), m.data) for m in messages]
        return found
    finally:
        await nc.close()


async def published(auth_mesh: Mesh, request_id: str) -> tuple[auth_events_pb2.AuthFailed, bytes]:
    """The auth.failed event of the request ``request_id``, once it is in the stream."""

    async def find() -> tuple[auth_events_pb2.AuthFailed, bytes] | None:
        for envelope, raw in await failures_in_stream(auth_mesh):
            payload = unpack_payload(envelope)
            assert isinstance(payload, auth_events_pb2.AuthFailed)
            if payload.request_id == request_id:
                assert envelope.source == "/plugmesh/gateway"
                return payload, raw
        return None

    return await eventually(find, timeout_seconds=5, what=f"auth.failed of {request_id}")
