"""A replica follows ``mcp.server.*`` even when its first try at NATS failed: it tries
again, and once subscribed it reloads on connecting and on each event; closed, it leaves
no connection behind (the failed try's neither)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mcpservers.events import Follower
from meshkit.events import subject_of
from tests.support.nats_servers import MonitoredNats, free_port, start_behind_stalled_nats
from tests.support.waiting import until

NAME = "plugmesh-gateway-mcp-servers"


async def test_a_follower_whose_first_try_failed_reloads_on_events_once_nats_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    reloads = 0

    async def reload() -> None:
        nonlocal reloads
        reloads += 1

    follower = Follower(f"nats://127.0.0.1:{port}", reload, resync_seconds=3600)
    nats_up = MonitoredNats(tmp_path, port=port)
    try:
        warning = "cannot follow mcp.server and mcp.hook events"
        await start_behind_stalled_nats(port, follower.start, failed=lambda: warning in caplog.text)
        await nats_up.start()
        await until(lambda: reloads == 1, timeout_seconds=15, what="the reload on connecting")
        connections = await nats_up.connections(NAME)
        await nats_up.publish(subject_of("mcp.server.created"), b"look now")
        await until(lambda: reloads == 2, what="the reload on the event")
        await follower.close()
        await follower.close()  # twice is fine
        left = await nats_up.connections(NAME)
    finally:
        await follower.close()
        await nats_up.stop()

    assert connections == 1
    assert left == 0  # the failed try's connection too was closed
