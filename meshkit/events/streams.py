"""The JetStream streams of the mesh, created or brought up to date at startup.

- ``PLUGMESH_EVENTS`` captures ``plugmesh.events.>``: retention and limits from
  :class:`EventSettings`, and the dedupe window in which a second publish with the same
  ``Nats-Msg-Id`` (the event id) is dropped.
- ``PLUGMESH_DLQ`` captures ``plugmesh.dlq.>``: events a consumer gave up on, with the
  error, kept until replayed or aged out.

:func:`ensure_streams` is idempotent and safe to run from every process at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from meshkit.events.errors import StreamError
from meshkit.events.settings import EventSettings

__all__ = [
    "DLQ_STREAM",
    "DLQ_SUBJECTS",
    "EVENTS_STREAM",
    "EVENTS_SUBJECTS",
    "dlq_config",
    "ensure_stream",
    "ensure_streams",
    "events_config",
]

log = logging.getLogger(__name__)

EVENTS_STREAM = "PLUGMESH_EVENTS"
EVENTS_SUBJECTS = "plugmesh.events.>"
DLQ_STREAM = "PLUGMESH_DLQ"
DLQ_SUBJECTS = "plugmesh.dlq.>"

# The fields this module owns; anything else an operator set on a stream is left alone.
_MANAGED = (
    "subjects",
    "retention",
    "max_age",
    "max_bytes",
    "max_msgs",
    "storage",
    "num_replicas",
    "duplicate_window",
    "discard",
)


def _limit(value: float) -> int:
    return int(value) if value > 0 else -1


def events_config(settings: EventSettings) -> StreamConfig:
    """The configuration of the event stream."""
    return StreamConfig(
        name=EVENTS_STREAM,
        description="plugmesh events (plugmesh.events.<type>), one envelope per message",
        subjects=[EVENTS_SUBJECTS],
        retention=RetentionPolicy(settings.stream_retention),
        max_age=settings.stream_max_age_seconds,
        max_bytes=_limit(settings.stream_max_bytes),
        max_msgs=_limit(settings.stream_max_msgs),
        storage=StorageType(settings.stream_storage),
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.dedupe_window_seconds,
        discard=DiscardPolicy.OLD,
    )


def dlq_config(settings: EventSettings) -> StreamConfig:
    """The configuration of the dead-letter stream."""
    return StreamConfig(
        name=DLQ_STREAM,
        description="plugmesh dead letters (plugmesh.dlq.<consumer>.<type>) with their error",
        subjects=[DLQ_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        max_age=settings.dlq_max_age_seconds,
        max_bytes=-1,
        max_msgs=-1,
        storage=StorageType(settings.stream_storage),
        num_replicas=settings.stream_replicas,
        duplicate_window=settings.dedupe_window_seconds,
        discard=DiscardPolicy.OLD,
    )


async def ensure_streams(js: JetStreamContext, settings: EventSettings) -> None:
    """Create the event and dead-letter streams, or update them to ``settings``.

    Raises:
        StreamError: A stream could not be created or updated; names the stream.
    """
    for config in (events_config(settings), dlq_config(settings)):
        await ensure_stream(js, config)


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream of ``config``, or update it when a managed field differs.

    Raises:
        StreamError: It could not be created or updated (for example its subjects overlap
            another stream's, or its storage type would change).
    """
    name = config.name or ""
    for attempt in range(2):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except APIError as exc:
                if attempt == 0 and exc.err_code == 10058:  # created by another process meanwhile
                    continue
                raise StreamError(name, f"cannot be created: {exc.description}") from exc
            log.info("stream created", extra={"stream": name})
            return
        except APIError as exc:
            raise StreamError(name, f"cannot be read: {exc.description}") from exc
        differing = _differences(info.config, config)
        if not differing:
            return
        try:
            await js.update_stream(config)
        except APIError as exc:
            raise StreamError(
                name, f"cannot be updated ({', '.join(differing)}): {exc.description}"
            ) from exc
        log.info("stream updated", extra={"stream": name, "fields": differing})
        return


def _differences(current: StreamConfig, wanted: StreamConfig) -> Sequence[str]:
    return [
        field
        for field in _MANAGED
        if _normal(getattr(current, field)) != _normal(getattr(wanted, field))
    ]


def _normal(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return sorted(value)
    return value
