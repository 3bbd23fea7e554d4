"""The MCP view's feed hears every change of a server's state and last error, against
real upstream MCP servers: a server that cannot be reached, one refreshed to the same
tools and one killed and refreshed each push a frame although the served tools stay the
same (the MCP clients' tools listener hears none of them), and bursts make one frame."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import pytest

from gateway.console.mcp import change_frames
from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.spec import HttpTransport, UpstreamSpec
from gateway.mcpfront.upstream import State
from tests.gateway.mcp_upstreams.conftest import SETTINGS, HttpServer
from tests.support.waiting import until

READY_SECONDS = 20.0


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    running = Upstreams(SETTINGS)
    yield running
    await running.close()


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"  # closed when returned


async def _frame(frames: AsyncGenerator[bytes, None], timeout_seconds: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout_seconds):
        return await anext(frames)


async def test_a_server_that_cannot_be_reached_pushes_its_state_and_error(
    upstreams: Upstreams,
) -> None:
    tools_changes: list[None] = []
    upstreams.add_listener(lambda: tools_changes.append(None))
    frames = change_frames(upstreams.add_status_listener)
    try:
        first = await _frame(frames)
        await upstreams.apply([UpstreamSpec(name="gone", transport=HttpTransport(_dead_url()))])
        upstream = upstreams.get("gone")
        assert upstream is not None
        await until(lambda: upstream.state is State.FAILING, what="gone failing")
        pushed = await _frame(frames)
    finally:
        await frames.aclose()

    assert first == pushed == b"event: changed\ndata: {}\n\n"
    assert upstream.last_error
    assert tools_changes == []  # nothing was ever listed: the MCP clients hear nothing


async def test_a_refresh_to_the_same_tools_and_a_killed_server_each_push_a_frame(
    upstreams: Upstreams,
) -> None:
    server = HttpServer()
    await server.start()
    tools_changes: list[None] = []
    upstreams.add_listener(lambda: tools_changes.append(None))
    try:
        await upstreams.apply([UpstreamSpec(name="web", transport=HttpTransport(server.url))])
        upstream = upstreams.get("web")
        assert upstream is not None
        await until(lambda: upstream.state is State.READY, timeout_seconds=READY_SECONDS)
        listed_changes = len(tools_changes)
        frames = change_frames(upstreams.add_status_listener)
        try:
            await _frame(frames)  # the first, at once
            fetched = upstream.tools_fetch_time
            upstream.refresh()
            await _frame(frames)
            refreshed = upstream.tools_fetch_time

            await server.stop()
            upstream.refresh()
            await _frame(frames)
            await until(lambda: upstream.state is not State.READY, what="web not ready")
            error = upstream.last_error
        finally:
            await frames.aclose()
    finally:
        await server.stop()

    assert refreshed is not None
    assert fetched is not None
    assert refreshed > fetched
    assert error
    # READY -> not READY unlists the tools once; the refresh to the same tools did not.
    assert len(tools_changes) == listed_changes + 1


async def test_a_burst_of_changes_makes_one_frame() -> None:
    listeners: list[Callable[[], None]] = []

    def add(listener: Callable[[], None]) -> Callable[[], None]:
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    frames = change_frames(add, settle_seconds=0.2)
    try:
        await _frame(frames)
        for _ in range(5):  # CONNECTING, FAILING, CONNECTING, ... within the settling
            listeners[0]()
            await asyncio.sleep(0.02)
        await _frame(frames)
        extra = asyncio.ensure_future(anext(frames))
        done, _ = await asyncio.wait([extra], timeout=0.5)
        extra.cancel()
        await asyncio.gather(extra, return_exceptions=True)
    finally:
        await frames.aclose()

    assert not done
    assert listeners == []  # the feed's end removed its listener
