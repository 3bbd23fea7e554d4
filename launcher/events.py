"""``plugmesh events tail`` and ``plugmesh events dlq``: watching events and dead letters.

``tail`` subscribes to ``plugmesh.events.<pattern>`` on core NATS (no consumer is
created, nothing is acknowledged) and prints one line per event: time, type, source,
subject and the start of the payload as JSON. ``dlq`` lists the dead-letter stream;
``dlq --replay ID`` republishes one dead letter (by its stream sequence or event id) on
its original subject and removes it from the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import nats
import nats.errors
from google.protobuf import json_format
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from meshkit.config import DEFAULT_NATS_ADDRESS
from meshkit.events.deadletters import DeadLetter, list_dead_letters, replay_dead_letter
from meshkit.events.envelope import parse_event, type_of_subject, unpack_payload
from meshkit.events.errors import DeadLetterNotFound, EnvelopeError
from meshkit.events.streams import DLQ_STREAM
from meshkit.events.subscriber import filter_subject
from meshkit.tls import MeshTls, nats_options

__all__ = ["format_event", "nats_url", "print_dead_letters", "replay", "tail"]


def nats_url(flag: str | None, data_dir: Path, env: Mapping[str, str]) -> str:
    """The NATS to ask: the flag, else ``PLUGMESH_NATS_URL``, else the one ``up`` runs."""
    if flag:
        return flag
    if env.get("PLUGMESH_NATS_URL"):
        return env["PLUGMESH_NATS_URL"]
    from launcher.state import read_state

    state = read_state(data_dir)
    url = state.get("nats_url") if state else None
    if isinstance(url, str) and "***" not in url:
        return url
    return f"nats://{env.get('PLUGMESH_NATS_ADDRESS') or DEFAULT_NATS_ADDRESS}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def format_event(subject: str, data: bytes, *, payload_chars: int = 120) -> str:
    """One line for an event: time, type, source, subject and the start of its payload."""
    try:
        event = parse_event(data)
    except EnvelopeError as exc:
        return f"{'-':<24} {type_of_subject(subject):<32} <not an event: {exc}>"
    try:
        payload = json.dumps(
            json_format.MessageToDict(unpack_payload(event)), separators=(",", ":")
        )
    except EnvelopeError as exc:
        payload = f"<{exc}>"
    when = event.time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (
        f"{when:<24} {event.type:<32} {event.source:<22} {event.subject or '-':<24} "
        f"{_shorten(payload, payload_chars)}"
    )


async def _connect(url: str, timeout_seconds: float, tls: MeshTls | None) -> Client:
    async def quiet(_exc: Exception) -> None:
        pass

    try:
        async with asyncio.timeout(timeout_seconds):
            return await nats.connect(
                url,
                name="plugmesh-cli",
                connect_timeout=timeout_seconds,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                error_cb=quiet,
                **nats_options(tls),
            )
    except TimeoutError:
        raise nats.errors.NoServersError from None


async def tail(
    url: str,
    pattern: str,
    out: TextIO,
    err: TextIO,
    *,
    count: int | None = None,
    duration_seconds: float | None = None,
    payload_chars: int = 120,
    tls: MeshTls | None = None,
) -> int:
    """Print events matching ``pattern`` as they flow; return the exit code.

    Stops after ``count`` events or ``duration_seconds``, else runs until interrupted.
    """
    try:
        subject = filter_subject(pattern)
    except ValueError as exc:
        print(f"plugmesh: {exc}", file=err)
        return 2
    try:
        client = await _connect(url, 5.0, tls)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        print(f"plugmesh: cannot reach NATS at {url}: {exc}", file=err)
        return 1
    try:
        subscription = await client.subscribe(subject)
        await client.flush()
        print(f"tailing {subject} on {url}", file=err, flush=True)
        seen = 0
        deadline = None if duration_seconds is None else time.monotonic() + duration_seconds
        while count is None or seen < count:
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                msg = await subscription.next_msg(timeout=min(wait, 1.0))
            except nats.errors.TimeoutError:
                if client.is_closed:
                    print("plugmesh: NATS connection closed", file=err)
                    return 1
                continue
            print(format_event(msg.subject, msg.data, payload_chars=payload_chars), file=out)
            out.flush()
            seen += 1
        return 0
    finally:
        await client.close()


def _letter_line(letter: DeadLetter, error_chars: int) -> str:
    when = letter.time.strftime("%Y-%m-%dT%H:%M:%SZ") if letter.time else "-"
    return (
        f"{letter.sequence:<6} {when:<20} {letter.consumer:<24} {letter.event_type:<28} "
        f"{letter.event_id:<36} {letter.attempts:<8} {_shorten(letter.error, error_chars)}"
    )


async def print_dead_letters(
    url: str,
    out: TextIO,
    err: TextIO,
    *,
    limit: int = 100,
    error_chars: int = 80,
    tls: MeshTls | None = None,
) -> int:
    """List the oldest ``limit`` dead letters; return the exit code."""
    try:
        client = await _connect(url, 5.0, tls)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        print(f"plugmesh: cannot reach NATS at {url}: {exc}", file=err)
        return 1
    try:
        js = client.jetstream()
        try:
            letters = await list_dead_letters(js, limit=limit)
        except NotFoundError:
            print(f"plugmesh: no {DLQ_STREAM} stream: no plugin has started yet", file=err)
            return 1
        if not letters:
            print("no dead letters", file=out)
            return 0
        header = (
            f"{'SEQ':<6} {'TIME':<20} {'CONSUMER':<24} {'TYPE':<28} {'EVENT ID':<36} "
            f"{'ATTEMPTS':<8} ERROR"
        )
        print(header, file=out)
        for letter in letters:
            print(_letter_line(letter, error_chars), file=out)
        return 0
    finally:
        await client.close()


async def replay(
    url: str, letter_id: str, out: TextIO, err: TextIO, *, tls: MeshTls | None = None
) -> int:
    """Republish one dead letter on its original subject; return the exit code."""
    try:
        client = await _connect(url, 5.0, tls)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        print(f"plugmesh: cannot reach NATS at {url}: {exc}", file=err)
        return 1
    try:
        try:
            letter = await replay_dead_letter(client.jetstream(), letter_id)
        except (DeadLetterNotFound, NotFoundError) as exc:
            print(f"plugmesh: {exc}", file=err)
            return 1
        print(
            f"replayed dead letter {letter.sequence} (event {letter.event_id}, "
            f"{letter.event_type}) to {letter.original_subject}",
            file=out,
        )
        return 0
    finally:
        await client.close()
