"""The cancel relay's connection: when its first try at NATS fails it tries again, and
once subscribed it hears another replica's cancellation; closed, it leaves no connection
behind (the failed try's neither)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.mcpfront.cancel_relay import SUBJECT, CallKey, CancelRelay
from tests.support.nats_servers import MonitoredNats, free_port, start_behind_stalled_nats
from tests.support.waiting import until

NAME = "plugmesh-gateway-mcp-cancel"


async def test_a_relay_whose_first_try_failed_hears_cancellations_once_nats_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    cancelled: list[CallKey] = []
    relay = CancelRelay(f"nats://127.0.0.1:{port}", cancelled.append)
    nats_up = MonitoredNats(tmp_path, port=port)
    try:
        warning = "cancellations cannot reach the other replicas yet"
        await start_behind_stalled_nats(port, relay.start, failed=lambda: warning in caplog.text)
        assert not relay.connected
        await nats_up.start()
        await until(lambda: relay.connected, timeout_seconds=15, what="the relay to connect")
        connections = await nats_up.connections(NAME)
        told = {"caller": "c", "session": "s", "request": "7"}
        await nats_up.publish(SUBJECT, json.dumps(told).encode())
        await until(lambda: cancelled == [("c", "s", "7")], what="the cancellation")
        await relay.close()
        await relay.close()  # twice is fine
        left = await nats_up.connections(NAME)
    finally:
        await relay.close()
        await nats_up.stop()

    assert connections == 1
    assert left == 0
