"""Upstreams that die, never start, answer garbage; and stopping them cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

import pytest

from gateway.mcpfront.spec import HttpTransport, StdioTransport
from gateway.mcpfront.upstream import State, Upstream
from gateway.mcpfront.upstream_errors import (
    UpstreamDied,
    UpstreamError,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamRejected,
)
from meshkit.registration import Backoff
from tests.gateway.mcp_upstreams.conftest import (
    ROOT,
    SETTINGS,
    StartHttp,
    StartUpstream,
    process_gone,
    ready,
    stdio_transport,
)
from tests.support.waiting import eventually, until

pytestmark = pytest.mark.timeout(90)


async def pid_of(upstream: Upstream) -> int:
    result = await upstream.call("pid", {})
    pid = result["structuredContent"]["result"]
    assert isinstance(pid, int)
    return pid


def python(code: str) -> StdioTransport:
    return StdioTransport(command=sys.executable, args=("-c", code))


async def test_a_stdio_upstream_killed_mid_call_fails_the_calls_at_once_and_comes_back(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(await start_upstream(stdio_transport()))
    first = await pid_of(upstream)
    started = asyncio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    in_flight = asyncio.create_task(
        upstream.call("slow", {"steps": 500, "step_seconds": 0.02}, progress=progress)
    )
    await asyncio.wait_for(started.wait(), 20)

    with pytest.raises(UpstreamDied) as died:
        await upstream.call("die", {})
    with pytest.raises(UpstreamDied):
        await asyncio.wait_for(in_flight, 5)

    assert "the connection ended during die" in str(died.value)

    async def new_child() -> int | None:
        try:
            pid = await pid_of(upstream)
        except UpstreamError:
            return None  # not back yet
        return pid if pid != first else None

    await eventually(new_child, timeout_seconds=30, what="a new child serving")
    assert process_gone(first)
    assert "dying now" in upstream.last_error


@pytest.mark.parametrize("options", [(), ("--legacy",)], ids=["modern", "legacy"])
async def test_an_http_upstream_killed_mid_call_fails_then_is_ready_once_it_is_back(
    start_http: StartHttp, start_upstream: StartUpstream, options: tuple[str, ...]
) -> None:
    server = await start_http(*options)
    upstream = await ready(await start_upstream(HttpTransport(server.url)))

    with pytest.raises(UpstreamDied):
        await asyncio.wait_for(upstream.call("die", {}), 10)
    await server.exited()

    await until(lambda: upstream.state is State.FAILING, what="the upstream failing")
    assert upstream.last_error
    with pytest.raises(UpstreamNotReady) as refused:
        await upstream.call("echo", {"text": "x"})
    assert refused.value.state == "failing"
    assert refused.value.last_error == upstream.last_error

    await server.start()
    await ready(upstream)
    assert (await upstream.call("echo", {"text": "back"}))["content"][0]["text"] == "echo:back"


async def test_a_command_that_exits_at_once_is_failing_with_its_error_and_retried(
    start_upstream: StartUpstream,
) -> None:
    states: list[State] = []
    upstream = await start_upstream(
        python("import sys; print('missing setting FOO', file=sys.stderr); sys.exit(3)"),
        on_change=lambda changed: states.append(changed.state),
    )

    await until(lambda: states.count(State.FAILING) >= 3, what="three failed attempts")

    assert upstream.state in (State.FAILING, State.CONNECTING)
    assert "missing setting FOO" in upstream.last_error
    assert State.READY not in states
    assert states[:4] == [State.CONNECTING, State.FAILING, State.CONNECTING, State.FAILING]


async def test_a_command_that_does_not_exist_is_failing(start_upstream: StartUpstream) -> None:
    upstream = await start_upstream(StdioTransport(command="/nonexistent/mcp-server"))

    await until(lambda: upstream.state is State.FAILING, what="the upstream failing")

    assert "/nonexistent/mcp-server" in upstream.last_error
    assert "FileNotFoundError" in upstream.last_error


async def test_a_command_writing_garbage_to_stdout_is_failing_and_stopped(
    start_upstream: StartUpstream, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('hello, I am not an MCP server', flush=True)\n"
        "time.sleep(120)\n"
    )
    settings = dataclasses.replace(SETTINGS, connect_timeout_seconds=1.0)
    upstream = await start_upstream(python(code), settings=settings)

    await until(lambda: upstream.state is State.FAILING, what="the upstream failing")

    assert "no MCP handshake and tool list within 1.0 s" in upstream.last_error
    assert "hello, I am not an MCP server" in upstream.last_error
    await until(pid_file.exists, what="the child's pid written")
    pid = int(pid_file.read_text())
    await until(lambda: process_gone(pid), what=f"the garbage child {pid} stopped")


async def test_close_stops_the_child_and_may_be_called_twice(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(await start_upstream(stdio_transport()))
    pid = await pid_of(upstream)

    await asyncio.gather(upstream.close(), upstream.close())
    await upstream.close()

    assert process_gone(pid)
    assert upstream.state is State.CLOSED
    with pytest.raises(UpstreamNotReady):
        await upstream.call("echo", {"text": "x"})


async def test_close_while_connecting_stops_the_child(
    start_upstream: StartUpstream, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)"
    upstream = await start_upstream(python(code))
    await until(pid_file.exists, what="the child started")
    pid = int(pid_file.read_text())
    assert upstream.state is State.CONNECTING

    await upstream.close()

    assert process_gone(pid)


async def test_a_disabled_upstream_never_starts(start_upstream: StartUpstream) -> None:
    upstream = await start_upstream(stdio_transport(), enabled=False)

    assert upstream.state is State.DISABLED
    with pytest.raises(UpstreamNotReady) as refused:
        await upstream.call("echo", {"text": "x"})
    assert refused.value.state == "disabled"


async def test_a_malformed_result_is_a_protocol_error(start_upstream: StartUpstream) -> None:
    upstream = await ready(await start_upstream(raw_upstream()))

    with pytest.raises(UpstreamProtocolError) as raised:
        await upstream.call("malformed", {})

    assert "malformed answered what is not a tools/call result" in str(raised.value)
    assert upstream.state is State.READY


async def test_a_json_rpc_error_is_passed_on_with_its_code_and_data(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(await start_upstream(raw_upstream()))

    with pytest.raises(UpstreamRejected) as raised:
        await upstream.call("rejected", {})

    assert (raised.value.code, raised.value.error_message) == (-32602, "no thanks")
    assert raised.value.data == {"why": "test"}


async def test_a_stray_line_on_stdout_is_logged_and_the_connection_goes_on(
    start_upstream: StartUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.mcpfront")
    upstream = await ready(await start_upstream(raw_upstream(), name="raw"))

    result = await upstream.call("chatty", {})

    assert result["content"] == [{"type": "text", "text": "still fine"}]
    await until(
        lambda: any("a stray line" in record.getMessage() for record in caplog.records),
        what="the stray line logged",
    )
    assert upstream.state is State.READY


def raw_upstream() -> StdioTransport:
    return StdioTransport(
        command=sys.executable,
        args=("-m", "tests.gateway.mcp_upstreams.raw_upstream"),
        cwd=str(ROOT),
    )


async def test_secrets_reach_neither_the_log_nor_the_status(
    start_upstream: StartUpstream, start_http: StartHttp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start_http()
    failing_child = await start_upstream(python("import sys; sys.exit(1)"), name="child")
    child = await start_upstream(
        stdio_transport(env={"API_KEY": "s3cr3t-env-value"}), name="working-child"
    )
    unreachable = await start_upstream(
        HttpTransport("http://127.0.0.1:9/mcp", headers={"Authorization": "Bearer s3cr3t-hdr"}),
        name="unreachable",
    )
    web = await start_upstream(
        HttpTransport(server.url, headers={"Authorization": "Bearer s3cr3t-hdr-2"}), name="web"
    )
    await ready(child)
    await ready(web)
    await until(lambda: unreachable.state is State.FAILING, what="unreachable failing")
    await until(lambda: failing_child.state is State.FAILING, what="the child failing")
    await child.call("echo", {"text": "x"})
    await web.call("echo", {"text": "x"})

    shown = [record.getMessage() for record in caplog.records]
    shown += [repr(record.__dict__) for record in caplog.records]
    shown += [repr(u.status()) + repr(u.spec) for u in (failing_child, child, unreachable, web)]
    assert not [text for text in shown if "s3cr3t" in text]


async def test_refresh_connects_a_failing_upstream_without_waiting_out_the_backoff(
    start_http: StartHttp, start_upstream: StartUpstream
) -> None:
    server = await start_http()
    await server.stop()
    patient = dataclasses.replace(SETTINGS, backoff=Backoff(initial_seconds=600))
    upstream = await start_upstream(HttpTransport(server.url), settings=patient)
    await until(lambda: upstream.state is State.FAILING, what="the upstream failing")
    await server.start()

    upstream.refresh()

    await ready(upstream)


async def test_refresh_fetches_the_tools_again(start_upstream: StartUpstream) -> None:
    upstream = await ready(await start_upstream(stdio_transport()))
    fetched = upstream.tools_fetch_time
    assert fetched is not None

    upstream.refresh()

    await until(
        lambda: (upstream.tools_fetch_time or fetched) > fetched, what="the tools fetched again"
    )
