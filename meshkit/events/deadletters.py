"""Dead letters: events a consumer gave up on, kept in the ``PLUGMESH_DLQ`` stream.

A dead letter is the original message (envelope bytes and trace headers) published on
``plugmesh.dlq.<consumer>.<event type>``, with headers saying who gave up, after how many
attempts and why. :func:`replay_dead_letter` republishes one on its original subject
(every consumer of that subject gets it again; those that had handled it skip it by its
event id) and removes it from the dead-letter stream.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from meshkit.events.errors import DeadLetterNotFound
from meshkit.events.relay import MSG_ID
from meshkit.events.streams import DLQ_STREAM, DLQ_SUBJECTS
from meshkit.tracing import TRACEPARENT, TRACESTATE

__all__ = [
    "ATTEMPTS",
    "CONSUMER",
    "ERROR",
    "EVENT_ID",
    "ORIGINAL_SEQUENCE",
    "ORIGINAL_SUBJECT",
    "REPLAY_OF",
    "DeadLetter",
    "dead_letter_headers",
    "dead_letter_subject",
    "find_dead_letter",
    "list_dead_letters",
    "publish_dead_letter",
    "replay_dead_letter",
]

CONSUMER = "Plugmesh-Dlq-Consumer"
ERROR = "Plugmesh-Dlq-Error"
ATTEMPTS = "Plugmesh-Dlq-Attempts"
EVENT_ID = "Plugmesh-Dlq-Event-Id"
ORIGINAL_SUBJECT = "Plugmesh-Dlq-Subject"
ORIGINAL_SEQUENCE = "Plugmesh-Dlq-Stream-Sequence"
REPLAY_OF = "Plugmesh-Replay-Of"

_HEADER_UNSAFE = re.compile(r"[\r\n]+")
_MAX_ERROR_CHARS = 2000


def dead_letter_subject(consumer: str, event_type: str) -> str:
    """``plugmesh.dlq.<consumer>.<event type>``."""
    return f"plugmesh.dlq.{consumer}.{event_type or 'unknown'}"


def dead_letter_headers(
    original: Mapping[str, str] | None,
    *,
    consumer: str,
    event_id: str,
    original_subject: str,
    original_sequence: int,
    attempts: int,
    error: str,
) -> dict[str, str]:
    """Headers of a dead letter: the original trace context plus why it died.

    ``Nats-Msg-Id`` is ``<consumer>.<event id>.<stream sequence>``: giving up twice on one
    delivered message (the ack of the first give-up was lost) stores one dead letter,
    while a replayed copy (a new stream message) that fails again gets a dead letter of
    its own instead of being dropped as a duplicate.
    """
    headers = {
        key: value for key, value in (original or {}).items() if key in (TRACEPARENT, TRACESTATE)
    }
    headers.update(
        {
            MSG_ID: f"{consumer}.{event_id}.{original_sequence}",
            CONSUMER: consumer,
            EVENT_ID: event_id,
            ORIGINAL_SUBJECT: original_subject,
            ORIGINAL_SEQUENCE: str(original_sequence),
            ATTEMPTS: str(attempts),
            ERROR: _HEADER_UNSAFE.sub(" | ", error)[:_MAX_ERROR_CHARS],
        }
    )
    return headers


async def publish_dead_letter(
    js: JetStreamContext,
    msg: Msg,
    *,
    consumer: str,
    event_id: str,
    event_type: str,
    error: str,
    timeout_seconds: float,
) -> None:
    """Publish a delivered message to the dead-letter subject of ``consumer``.

    Raises:
        nats.errors.Error: NATS did not take it.
        nats.js.errors.APIError: JetStream refused it.
    """
    metadata = msg.metadata
    headers = dead_letter_headers(
        msg.headers,
        consumer=consumer,
        event_id=event_id,
        original_subject=msg.subject,
        original_sequence=metadata.sequence.stream,
        attempts=metadata.num_delivered,
        error=error,
    )
    await js.publish(
        dead_letter_subject(consumer, event_type),
        msg.data,
        headers=headers,
        timeout=timeout_seconds,
    )


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter, as stored in the dead-letter stream."""

    sequence: int
    time: dt.datetime | None
    consumer: str
    event_id: str
    event_type: str
    original_subject: str
    attempts: int
    error: str
    data: bytes
    headers: Mapping[str, str]

    @classmethod
    def from_raw(cls, raw: RawStreamMsg) -> DeadLetter:
        """Read a dead letter from a message of the dead-letter stream."""
        headers: Mapping[str, str] = raw.headers or {}
        subject = raw.subject or ""
        consumer = headers.get(CONSUMER, "")
        prefix = f"plugmesh.dlq.{consumer}."
        attempts = headers.get(ATTEMPTS, "0")
        return cls(
            sequence=raw.seq or 0,
            time=raw.time,
            consumer=consumer,
            event_id=headers.get(EVENT_ID, ""),
            event_type=subject.removeprefix(prefix) if subject.startswith(prefix) else "",
            original_subject=headers.get(ORIGINAL_SUBJECT, ""),
            attempts=int(attempts) if attempts.isdigit() else 0,
            error=headers.get(ERROR, ""),
            data=raw.data or b"",
            headers=headers,
        )


async def list_dead_letters(js: JetStreamContext, *, limit: int = 100) -> list[DeadLetter]:
    """The oldest ``limit`` dead letters, oldest first."""
    letters: list[DeadLetter] = []
    async for letter in _walk(js):
        letters.append(letter)
        if len(letters) >= limit:
            break
    return letters


async def find_dead_letter(js: JetStreamContext, letter_id: str) -> DeadLetter:
    """The dead letter with stream sequence ``letter_id``, or with that event id.

    Raises:
        DeadLetterNotFound: There is none.
    """
    if letter_id.isdigit():
        try:
            raw = await js.get_msg(DLQ_STREAM, seq=int(letter_id))
        except NotFoundError:
            raise DeadLetterNotFound(letter_id) from None
        return DeadLetter.from_raw(raw)
    async for letter in _walk(js):
        if letter.event_id == letter_id:
            return letter
    raise DeadLetterNotFound(letter_id)


async def replay_dead_letter(
    js: JetStreamContext, letter_id: str, *, timeout_seconds: float = 5.0
) -> DeadLetter:
    """Republish a dead letter on its original subject and remove it from the DLQ.

    The copy gets a new ``Nats-Msg-Id`` (JetStream would drop the event id as a duplicate
    inside the dedupe window) and keeps the event id inside the envelope, which is what
    consumers deduplicate on.

    Raises:
        DeadLetterNotFound: No dead letter has that sequence or event id.
    """
    letter = await find_dead_letter(js, letter_id)
    headers = {
        key: value for key, value in letter.headers.items() if key in (TRACEPARENT, TRACESTATE)
    }
    headers[MSG_ID] = f"{letter.event_id}.replay.{letter.sequence}"
    headers[REPLAY_OF] = str(letter.sequence)
    subject = letter.original_subject or f"plugmesh.events.{letter.event_type}"
    await js.publish(subject, letter.data, headers=headers, timeout=timeout_seconds)
    with contextlib.suppress(NotFoundError):  # removed by a concurrent replay
        await js.delete_msg(DLQ_STREAM, letter.sequence)
    return letter


async def _walk(js: JetStreamContext) -> AsyncIterator[DeadLetter]:
    sequence = 1
    while True:
        try:
            raw = await js.get_msg(DLQ_STREAM, seq=sequence, subject=DLQ_SUBJECTS, next=True)
        except NotFoundError:
            return
        yield DeadLetter.from_raw(raw)
        sequence = (raw.seq or sequence) + 1
