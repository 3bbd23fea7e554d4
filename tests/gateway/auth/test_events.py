"""The gateway's NATS link: late NATS, lost NATS, and what the caches do meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

import nats

from gateway.auth.events import AuthEvents
from meshkit.events import build_event, source_of, subject_of
from meshkit.natsd import NatsServer
from plugmesh.events.v1 import (
    auth_events_pb2,
    event_pb2,
    machine_user_events_pb2,
    user_events_pb2,
)
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from registry.testing import eventually


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    port = _free_port()
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
                return True if len(seen.machine_users) + len(seen.users) == 4 else None

            await eventually(heard, what="the invalidations")
            assert (seen.machine_users, seen.users) == (["mu-1", "mu-2"], ["alice", "bob"])
        # NATS went away: the caches must stop trusting what they hold.

        async def down() -> bool | None:
            return True if seen.live[-1] is False else None

        await eventually(down, timeout_seconds=10, what="the link to notice NATS is gone")
    finally:
        await link.close()
        await link.close()  # twice is fine


async def test_failures_are_dropped_not_raised_without_nats() -> None:
    seen = Recorder()
    link = _link(f"nats://127.0.0.1:{_free_port()}", seen)
    await link.start()
    try:
        await link.failed(
            auth_events_pb2.AuthFailed(actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_ANONYMOUS))
        )
        assert link.dropped == 1
    finally:
        await link.close()
