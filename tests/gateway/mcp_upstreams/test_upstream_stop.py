"""Stopping a stdio upstream whose child does not end when its stdin closes, with a close
timeout shorter than the SDK's stop of a child (as a gateway with a short shutdown grace
has): the child is still stopped, and the stop ends once it is."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from gateway.mcpfront.spec import StdioTransport, UpstreamSpec
from gateway.mcpfront.upstream import State, Upstream
from tests.gateway.mcp_upstreams.conftest import SETTINGS, process_gone
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(90)

#: Writes its pid, says ``said`` on stdout (nothing, or what is not MCP), then sleeps on,
#: deaf to its stdin closing.
DEAF = (
    "import os, sys, time\n"
    "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "print(sys.argv[2], flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.mark.parametrize("said", ["", "hello, I am not an MCP server"], ids=["mute", "garbage"])
async def test_a_short_close_timeout_still_stops_a_child_deaf_to_its_stdin(
    tmp_path: Path, said: str
) -> None:
    pid_file = tmp_path / "pid"
    transport = StdioTransport(command=sys.executable, args=("-c", DEAF, str(pid_file), said))
    upstream = Upstream(
        UpstreamSpec(name="deaf", transport=transport), settings=SETTINGS, close_timeout_seconds=0.5
    )
    await upstream.start()
    try:
        await until(pid_file.exists, timeout_seconds=30, what="the child started")
        pid = int(pid_file.read_text())
        assert upstream.state is State.CONNECTING

        # Well before the child would end by itself.
        await asyncio.wait_for(upstream.close(), 30)

        assert process_gone(pid)
        assert upstream.status().state is State.CLOSED
    finally:
        await upstream.close()
