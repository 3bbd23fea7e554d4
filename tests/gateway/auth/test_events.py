"""The gateway's NATS link: late NATS, lost NATS, and what the caches do meanwhile;
``auth.login`` once per session, ``auth.failed`` up to a rate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import nats
import pytest
from nats.aio.msg import Msg

from gateway.auth import events as auth_events
from gateway.auth.events import AuthEvents
from gateway.auth.logins import Login
from launcher.natsd import NatsServer
from meshkit.events import (
    EventSettings,
    build_event,
    parse_event,
    source_of,
    subject_of,
    unpack_payload,
)
from meshkit.events.streams import EVENTS_STREAM, ensure_streams
from plugmesh.events.v1 import (
    auth_events_pb2,
    event_pb2,
    machine_user_events_pb2,
    user_events_pb2,
)
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from tests.support.nats_servers import MonitoredNats, free_port, start_behind_stalled_nats
from tests.support.waiting import eventually, until


class Recorder:
    def __init__(self) -> None:
        self.machine_users: list[str] = []
        self.users: list[str] = []
        self.live: list[bool] = []


def _link(url: str, seen: Recorder) -> AuthEvents:
    return AuthEvents(
        url,
        on_machine_user=seen.machine_users.append,
        on_user=seen.users.append,
        on_live=seen.live.append,
    )


async def test_the_link_comes_up_when_nats_does_and_hears_invalidations(tmp_path: Path) -> None:
    port = free_port()
    seen = Recorder()
    link = _link(f"nats://127.0.0.1:{port}", seen)
    await link.start()
    try:
        assert not link.live
        async with NatsServer(tmp_path / "js", port=port) as server:

            async def up() -> bool | None:
                return True if link.live else None

            await eventually(up, timeout_seconds=10, what="the link to connect")
            assert seen.live[-1] is True
            nc = await nats.connect(server.url)
            try:
                for payload in (
                    machine_user_events_pb2.MachineUserDeleted(
                        machine_user=machineusers_pb2.MachineUser(machine_user_id="mu-1")
                    ),
                    machine_user_events_pb2.MachineUserTokenRotated(
                        machine_user=machineusers_pb2.MachineUser(machine_user_id="mu-2")
                    ),
                    machine_user_events_pb2.MachineUserUpdated(
                        machine_user=machineusers_pb2.MachineUser(machine_user_id="mu-3")
                    ),
                    user_events_pb2.UserUpdated(user=users_pb2.User(user_id="alice")),
                    user_events_pb2.UserPermissionsUpdated(user_id="bob"),
                ):
                    event = build_event(payload, source=source_of("test"))
                    await nc.publish(subject_of(event.type), event.SerializeToString())
                await nc.publish(subject_of("machine_user.deleted"), b"not an event")
                await nc.flush()
            finally:
                await nc.close()

            async def heard() -> bool | None:
                return True if len(seen.machine_users) + len(seen.users) == 5 else None

            await eventually(heard, what="the invalidations")
            assert (seen.machine_users, seen.users) == (
                ["mu-1", "mu-2", "mu-3"],
                ["alice", "bob"],
            )
        # NATS went away: the caches must stop trusting what they hold.

        async def down() -> bool | None:
            return True if seen.live[-1] is False else None

        await eventually(down, timeout_seconds=10, what="the link to notice NATS is gone")
    finally:
        await link.close()
        await link.close()  # twice is fine


async def test_a_link_whose_first_try_failed_follows_machine_users_once_nats_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    seen = Recorder()
    link = _link(f"nats://127.0.0.1:{port}", seen)
    nats_up = MonitoredNats(tmp_path, port=port)
    try:
        await start_behind_stalled_nats(
            port, link.start, failed=lambda: "auth events cannot use NATS" in caplog.text
        )
        assert not link.live
        await nats_up.start()
        await until(lambda: link.live, timeout_seconds=15, what="the link to connect")
        connections = await nats_up.connections("plugmesh-gateway")
        event = build_event(
            machine_user_events_pb2.MachineUserDeleted(
                machine_user=machineusers_pb2.MachineUser(machine_user_id="mu-1")
            ),
            source=source_of("test"),
        )
        await nats_up.publish(subject_of(event.type), event.SerializeToString())
        await until(lambda: seen.machine_users == ["mu-1"], what="the invalidation")
        await link.close()
        left = await nats_up.connections("plugmesh-gateway")
    finally:
        await link.close()
        await nats_up.stop()

    assert seen.live[-1] is False  # closed
    assert True in seen.live
    assert connections == 1
    assert left == 0  # the failed try's connection too was closed


async def test_failures_are_dropped_not_raised_without_nats() -> None:
    seen = Recorder()
    link = _link(f"nats://127.0.0.1:{free_port()}", seen)
    await link.start()
    try:
        await link.failed(
            auth_events_pb2.AuthFailed(actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_ANONYMOUS))
        )
        assert link.dropped == 1
    finally:
        await link.close()


async def _stored(server: NatsServer, subject: str) -> list[tuple[str, bytes]]:
    """(Nats-Msg-Id, data) of every message the event stream holds on ``subject``."""
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        found = []
        info = await js.stream_info(EVENTS_STREAM)
        if info.state.messages == 0:
            return []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(EVENTS_STREAM, sequence)
            if msg.subject == subject:
                found.append(((msg.headers or {}).get("Nats-Msg-Id", ""), msg.data or b""))
        return found
    finally:
        await nc.close()


def _append_to(messages: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    """A subscription callback that keeps every message in ``messages``."""

    async def append(msg: Msg) -> None:
        messages.append(msg)

    return append


async def _live_link(server: NatsServer, seen: Recorder, **settings: float) -> AuthEvents:
    link = AuthEvents(
        server.url,
        on_machine_user=seen.machine_users.append,
        on_user=seen.users.append,
        on_live=seen.live.append,
        **settings,  # type: ignore[arg-type]
    )
    await link.start()

    async def up() -> bool | None:
        return True if link.live else None

    await eventually(up, timeout_seconds=10, what="the link to connect")
    return link


async def test_a_session_is_announced_once_across_requests_and_gateways(tmp_path: Path) -> None:
    login = Login("ada", "ada@example.com", "Ada", "https://idp", "s-1", 1_700_000_000_000)
    async with NatsServer(tmp_path / "js") as server:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream(), EventSettings())
        await nc.close()
        one, two = await _live_link(server, Recorder()), await _live_link(server, Recorder())
        watcher = await nats.connect(server.url)
        sent: list[Msg] = []
        # A plain subscriber sees every publish, the copies the stream drops as duplicates too.
        await watcher.subscribe(subject_of("auth.login"), cb=_append_to(sent))
        await watcher.flush()
        try:
            for link in (one, two, one):
                link.logged_in(login, ip_address="10.0.0.1", user_agent="curl/8")

            # Each gateway announces the session once; only then is the stream's content final.
            await until(lambda: len(sent) >= 2, what="both gateways' auth.login")
            found = await _stored(server, subject_of("auth.login"))
        finally:
            await watcher.close()
            await one.close()
            await two.close()
    ((msg_id, data),) = found
    event = parse_event(data)
    payload = unpack_payload(event)
    assert msg_id == event.id == login.event_id()
    assert isinstance(payload, auth_events_pb2.AuthLogin)
    assert (payload.user_id, payload.email, payload.session_id) == ("ada", "ada@example.com", "s-1")
    assert (payload.ip_address, payload.user_agent) == ("10.0.0.1", "curl/8")


async def test_a_login_that_could_not_be_sent_is_sent_on_the_next_request(tmp_path: Path) -> None:
    port = free_port()
    login = Login("bo", "", "", "", "s-9", 1_700_000_000_000)
    link = _link(f"nats://127.0.0.1:{port}", Recorder())
    await link.start()
    try:
        # NATS is not there yet: the attempt fails at once, long before the link is up.
        link.logged_in(login, ip_address="", user_agent="")
        async with NatsServer(tmp_path / "js", port=port) as server:
            nc = await nats.connect(server.url)
            await ensure_streams(nc.jetstream(), EventSettings())
            await nc.close()

            async def up() -> bool | None:
                return True if link.live else None

            await eventually(up, timeout_seconds=10, what="the link to connect")
            link.logged_in(login, ip_address="", user_agent="")

            async def announced() -> list[tuple[str, bytes]] | None:
                return await _stored(server, subject_of("auth.login")) or None

            ((msg_id, _),) = await eventually(announced, what="the retried auth.login")
    finally:
        await link.close()
    assert msg_id == login.event_id()


async def test_a_flood_of_failures_is_published_up_to_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rate limiter's clock stands still, so nothing refills during the flood.
    monkeypatch.setattr(auth_events, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    async with NatsServer(tmp_path / "js") as server:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream(), EventSettings())
        await nc.close()
        link = await _live_link(server, Recorder(), failed_events_per_second=5.0)
        try:
            failure = auth_events_pb2.AuthFailed(
                actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_ANONYMOUS)
            )
            for _ in range(500):
                await link.failed(failure)
            sent = 500 - link.suppressed - link.dropped

            async def stored() -> list[tuple[str, bytes]] | None:
                found = await _stored(server, subject_of("auth.failed"))
                return found if len(found) >= sent else None

            published = await eventually(stored, what=f"{sent} auth.failed in the stream")
        finally:
            await link.close()
    # A burst of ten times the rate; the rest suppressed.
    assert len(published) == 50
    assert link.suppressed == 500 - len(published)
