"""``plugmesh events tail`` and ``plugmesh events dlq`` against a real nats-server."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from nats.aio.client import Client

import launcher.events
from launcher.natsd import NatsServer
from meshkit.events import build_event
from meshkit.events.deadletters import dead_letter_headers, dead_letter_subject
from meshkit.events.relay import MSG_ID
from tests.events.helpers import publish_directly, user_created

ROOT = Path(__file__).resolve().parents[2]


async def _plugmesh(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launcher.cli",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_an_event_line_shows_type_source_subject_and_the_start_of_the_payload() -> None:
    event = build_event(user_created("u-42"), source="/plugmesh/users", subject="users/u-42")

    line = launcher.events.format_event("plugmesh.events.user.created", event.SerializeToString())

    assert "user.created" in line
    assert "/plugmesh/users" in line
    assert "users/u-42" in line
    assert '{"user":{"userId":"u-42"' in line
    short = launcher.events.format_event("x", event.SerializeToString(), payload_chars=10)
    assert short.endswith("…")
    assert len(short.split()[-1]) == 10


def test_a_message_that_is_not_an_event_is_shown_as_such() -> None:
    line = launcher.events.format_event("plugmesh.events.user.created", b"\xff")

    assert "user.created" in line
    assert "<not an event" in line


async def test_tail_prints_events_as_they_flow(nats_server: NatsServer, nc: Client) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launcher.cli",
        "events",
        "tail",
        "user.*",
        "--count",
        "2",
        "--nats",
        nats_server.url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    started = await asyncio.wait_for(process.stderr.readline(), timeout=30)
    assert started.startswith(b"tailing plugmesh.events.user.*")
    await nc.publish("plugmesh.events.auth.login", b"not shown: another pattern")
    await publish_directly(nc.jetstream(), 2)
    out = await asyncio.wait_for(process.stdout.read(), timeout=30)
    await asyncio.wait_for(process.wait(), timeout=30)

    lines = out.decode().splitlines()
    assert process.returncode == 0
    assert len(lines) == 2
    assert all("user.created" in line and "/plugmesh/test" in line for line in lines)
    assert "users/0" in lines[0]
    assert "users/1" in lines[1]


async def test_dlq_lists_dead_letters_and_replays_one(nats_server: NatsServer, nc: Client) -> None:
    js = nc.jetstream()
    code, out, _ = await _plugmesh("events", "dlq", "--nats", nats_server.url)
    assert (code, out.strip()) == (0, "no dead letters")

    event = build_event(user_created("u-9"), source="/plugmesh/users", subject="users/u-9")
    headers = dead_letter_headers(
        {MSG_ID: event.id},
        consumer="audit-all",
        event_id=event.id,
        original_subject="plugmesh.events.user.created",
        original_sequence=17,
        attempts=5,
        error="ValueError: bad\nsecond line",
    )
    await js.publish(
        dead_letter_subject("audit-all", event.type), event.SerializeToString(), headers=headers
    )

    code, out, _ = await _plugmesh("events", "dlq", "--nats", nats_server.url)
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:4] == ["SEQ", "TIME", "CONSUMER", "TYPE"]
    assert row.split()[0] == "1"
    assert "audit-all" in row
    assert "user.created" in row
    assert event.id in row
    assert "ValueError: bad | second line" in row

    replayed = await nc.subscribe("plugmesh.events.user.created")
    code, out, _ = await _plugmesh("events", "dlq", "--replay", "1", "--nats", nats_server.url)
    assert code == 0
    assert f"replayed dead letter 1 (event {event.id}" in out
    msg = await replayed.next_msg(timeout=10)
    assert msg.data == event.SerializeToString()
    assert msg.headers is not None
    assert msg.headers[MSG_ID] == f"{event.id}.replay.1"

    code, out, _ = await _plugmesh("events", "dlq", "--nats", nats_server.url)
    assert out.strip() == "no dead letters"
    code, _, err = await _plugmesh("events", "dlq", "--replay", "1", "--nats", nats_server.url)
    assert code == 1
    assert "no dead letter with sequence or event id '1'" in err


async def test_an_unreachable_nats_is_reported() -> None:
    out, err = io.StringIO(), io.StringIO()

    code = await launcher.events.print_dead_letters("nats://127.0.0.1:9", out, err)

    assert code == 1
    assert "cannot reach NATS at nats://127.0.0.1:9" in err.getvalue()


def test_the_nats_url_comes_from_the_flag_the_environment_or_the_running_mesh(
    tmp_path: Path,
) -> None:
    env = {"PLUGMESH_NATS_URL": "nats://env:4222"}

    assert launcher.events.nats_url("nats://flag:1", tmp_path, env) == "nats://flag:1"
    assert launcher.events.nats_url(None, tmp_path, env) == "nats://env:4222"
    assert launcher.events.nats_url(None, tmp_path, {}) == "nats://127.0.0.1:4222"
    assert (
        launcher.events.nats_url(None, tmp_path, {"PLUGMESH_NATS_ADDRESS": "127.0.0.1:5000"})
        == "nats://127.0.0.1:5000"
    )
