"""Listing and calling an upstream's tools, over stdio and Streamable HTTP, in both eras."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters
from pydantic import TypeAdapter

from gateway.mcpfront.spec import HttpTransport, StdioTransport
from gateway.mcpfront.upstream import Upstream
from gateway.mcpfront.upstream_errors import UnknownTool, UpstreamTimeout
from tests.gateway.mcp_upstreams.conftest import (
    SETTINGS,
    StartHttp,
    StartUpstream,
    ready,
    stdio_transport,
)
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(60)

TOOLS = [
    "add",
    "die",
    "echo",
    "env",
    "events",
    "fails",
    "grow",
    "header",
    "hold",
    "pid",
    "rich",
    "show_meta",
    "slow",
]


async def direct_results(
    upstream: Upstream, calls: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The ``calls`` made to the same server by a client of its own, as it answers them."""
    transport = upstream.spec.transport
    target: Any
    if isinstance(transport, StdioTransport):
        target = StdioServerParameters(
            command=transport.command, args=list(transport.args), cwd=transport.cwd
        )
    else:
        target = transport.url
    results = []
    async with Client(target, cache=None) as client:
        await client.list_tools()
        for name, arguments in calls:
            request = types.CallToolRequest(
                params=types.CallToolRequestParams(name=name, arguments=arguments)
            )
            raw = await client.session.send_request(
                request,
                TypeAdapter(dict[str, Any]),  # type: ignore[type-var]  # accepted: see upstream.py
            )
            results.append(raw)
    return results


def as_the_gateway_answers(raw: dict[str, Any]) -> dict[str, Any]:
    """A server's own result, less its envelope stamps, with ``resultType``."""
    meta = {
        k: v
        for k, v in raw.get("_meta", {}).items()
        if not k.startswith("io.modelcontextprotocol/")
    }
    result = {k: v for k, v in raw.items() if k != "_meta"} | ({"_meta": meta} if meta else {})
    return {"resultType": "complete"} | result


async def test_every_page_of_tools_is_listed(served: Upstream) -> None:
    assert sorted(tool.name for tool in served.tools) == TOOLS
    assert served.skipped == ()
    status = served.status()
    assert status.tools_fetch_time is not None
    assert status.protocol_version in ("2026-07-28", "2025-11-25")
    assert status.last_error == ""


async def test_results_pass_through_whole(served: Upstream) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("echo", {"text": "hi"}),  # text
        ("add", {"a": 2, "b": 3}),  # structured, with an output schema
        ("rich", {}),  # every content type, annotations, _meta
        ("fails", {"reason": "no luck"}),  # isError
    ]
    results = [await served.call(tool, arguments) for tool, arguments in calls]

    direct = await direct_results(served, calls)
    assert results == [as_the_gateway_answers(result) for result in direct]


async def test_every_kind_of_content_arrives(served: Upstream) -> None:
    result = await served.call("rich", {})

    assert [block["type"] for block in result["content"]] == [
        "text",
        "image",
        "audio",
        "resource_link",
        "resource",
        "resource",
    ]
    assert result["content"][0]["_meta"] == {"k": "v"}
    assert result["content"][0]["annotations"] == {"audience": ["user"]}
    assert result["content"][1] == {"type": "image", "data": "aW1hZ2U=", "mimeType": "image/png"}
    assert result["content"][2] == {"type": "audio", "data": "YXVkaW8=", "mimeType": "audio/wav"}
    assert result["structuredContent"] == {"anything": [1, "two", None]}
    assert result["_meta"] == {"test/meta": {"x": 1}}
    assert (await served.call("fails", {"reason": "r"}))["isError"] is True


async def test_progress_is_forwarded(served: Upstream) -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        reports.append((value, total, message))

    result = await served.call("slow", {"steps": 3, "step_seconds": 0.01}, progress=progress)

    assert result["content"] == [{"type": "text", "text": "counted 3"}]
    assert reports == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_meta_goes_upstream_without_this_hops_keys(served: Upstream) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    meta = {
        "traceparent": traceparent,
        "dev.plugmesh/call_id": "c-1",
        "progressToken": 7,
        "io.modelcontextprotocol/clientInfo": {"name": "the caller", "version": "1"},
    }

    received = (await served.call("show_meta", {}, meta=meta))["structuredContent"]

    assert received["traceparent"] == traceparent
    assert received["dev.plugmesh/call_id"] == "c-1"
    assert "progressToken" not in received
    assert received.get("io.modelcontextprotocol/clientInfo", {}).get("name") != "the caller"


async def test_tools_are_fetched_again_when_the_server_says_they_changed(
    served: Upstream,
) -> None:
    fetched = served.tools_fetch_time

    added = (await served.call("grow", {}))["structuredContent"]["result"]

    await until(lambda: added in {tool.name for tool in served.tools}, what=f"{added} listed")
    assert served.tools_fetch_time is not None
    assert fetched is not None
    assert served.tools_fetch_time > fetched
    assert (await served.call(added, {}))["content"] == [{"type": "text", "text": "extra!"}]


async def test_a_cancelled_caller_cancels_the_upstream_work(served: Upstream) -> None:
    started = asyncio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    call = asyncio.create_task(
        served.call("slow", {"steps": 500, "step_seconds": 0.02}, progress=progress)
    )
    await asyncio.wait_for(started.wait(), 20)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    async def cancelled_upstream() -> bool:
        events = (await served.call("events", {}))["structuredContent"]["result"]
        return any(event.startswith("slow cancelled") for event in events)

    await until(cancelled_upstream, what="the upstream's slow cancelled")


async def test_a_call_past_its_timeout_fails_and_is_cancelled_upstream(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(await start_upstream(stdio_transport(), call_timeout_seconds=0.5))

    with pytest.raises(UpstreamTimeout) as raised:
        await upstream.call("slow", {"steps": 500, "step_seconds": 0.02})

    assert raised.value.timeout_seconds == 0.5
    assert "within 0.5 s" in str(raised.value)

    async def cancelled_upstream() -> bool:
        events = (await upstream.call("events", {}))["structuredContent"]["result"]
        return "slow started" in events and any(e.startswith("slow cancelled") for e in events)

    await until(cancelled_upstream, what="the upstream's slow cancelled")


async def test_the_callers_shorter_deadline_wins(start_upstream: StartUpstream) -> None:
    upstream = await ready(await start_upstream(stdio_transport(), call_timeout_seconds=60))

    with pytest.raises(UpstreamTimeout) as raised:
        await upstream.call("slow", {"steps": 500, "step_seconds": 0.02}, timeout_seconds=0.3)

    assert raised.value.timeout_seconds == 0.3


async def test_a_limit_of_one_call_serialises_calls(start_upstream: StartUpstream) -> None:
    upstream = await ready(await start_upstream(stdio_transport(), max_concurrent_calls=1))

    results = await asyncio.gather(
        *(upstream.call("hold", {"seconds": 0.1, "wait_for": 2}) for _ in range(3))
    )

    assert [result["structuredContent"]["result"] for result in results] == [1, 1, 1]


async def test_calls_up_to_the_limit_run_at_once(start_upstream: StartUpstream) -> None:
    upstream = await ready(await start_upstream(stdio_transport(), max_concurrent_calls=3))

    results = await asyncio.gather(
        *(upstream.call("hold", {"seconds": 20, "wait_for": 3}) for _ in range(3))
    )

    assert {result["structuredContent"]["result"] for result in results} == {3}


async def test_waiting_for_a_free_slot_counts_against_the_deadline(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(
        await start_upstream(stdio_transport(), max_concurrent_calls=1, call_timeout_seconds=30)
    )
    started = asyncio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    holding = asyncio.create_task(
        upstream.call("slow", {"steps": 500, "step_seconds": 0.02}, progress=progress)
    )
    await asyncio.wait_for(started.wait(), 20)

    with pytest.raises(UpstreamTimeout):
        await upstream.call("echo", {"text": "x"}, timeout_seconds=0.3)

    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding


@pytest.mark.parametrize(
    ("include", "exclude", "served_tools"),
    [
        ((), (), TOOLS),
        (("e*",), (), ["echo", "env", "events"]),
        ((), ("*e*",), ["add", "fails", "grow", "hold", "pid", "rich", "slow"]),
        (("e*", "add"), ("events",), ["add", "echo", "env"]),
        (("E*",), (), []),
    ],
    ids=["everything", "include", "exclude", "exclude-wins", "case-sensitive"],
)
async def test_include_and_exclude_globs_choose_the_served_tools(
    start_upstream: StartUpstream,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    served_tools: list[str],
) -> None:
    upstream = await ready(
        await start_upstream(stdio_transport(), include_tools=include, exclude_tools=exclude)
    )

    assert sorted(tool.name for tool in upstream.tools) == served_tools
    assert upstream.skipped == ()
    for name in set(TOOLS) - set(served_tools):
        with pytest.raises(UnknownTool):
            await upstream.call(name, {})


async def test_bad_tool_names_are_left_out_with_their_reason_and_the_rest_work(
    start_upstream: StartUpstream,
) -> None:
    upstream = await ready(await start_upstream(stdio_transport("--bad-names"), name="named"))

    assert sorted(tool.name for tool in upstream.tools) == TOOLS
    reasons = {tool.name: tool.reason for tool in upstream.skipped}
    assert set(reasons) == {
        "has space",
        "has/slash",
        "a_tool_name_that_is_fine_alone_but_too_long_behind_a_server_name",
    }
    assert "[A-Za-z0-9_.-]" in reasons["has space"]
    assert (
        "longer than 64"
        in reasons["a_tool_name_that_is_fine_alone_but_too_long_behind_a_server_name"]
    )
    assert (await upstream.call("echo", {"text": "fine"}))["content"][0]["text"] == "echo:fine"
    with pytest.raises(UnknownTool):
        await upstream.call("has space", {})


async def test_http_requests_carry_the_specs_headers(
    start_http: StartHttp, start_upstream: StartUpstream
) -> None:
    server = await start_http()
    headers = {"Authorization": "Bearer upstream-credential", "X-Team": "blue"}
    upstream = await ready(await start_upstream(HttpTransport(server.url, headers=headers)))

    for name, value in headers.items():
        result = await upstream.call("header", {"name": name})
        assert result["structuredContent"]["result"] == value


async def test_a_child_gets_a_minimal_environment_and_its_own_variables(
    start_upstream: StartUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGMESH_NOT_FOR_CHILDREN", "gateway-only")
    settings = dataclasses.replace(SETTINGS, child_environment={"LANG": "C.UTF-8"})
    upstream = await ready(
        await start_upstream(stdio_transport(env={"API_KEY": "k-123"}), settings=settings)
    )

    async def variable(name: str) -> Any:
        return (await upstream.call("env", {"name": name}))["structuredContent"]["result"]

    assert await variable("API_KEY") == "k-123"
    assert await variable("LANG") == "C.UTF-8"
    assert await variable("PATH")
    assert await variable("PLUGMESH_NOT_FOR_CHILDREN") is None


async def test_a_childs_stderr_reaches_the_log_line_by_line_tagged_with_the_server(
    start_upstream: StartUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.mcpfront")
    upstream = await ready(await start_upstream(stdio_transport(), name="noisy"))

    await upstream.call("hold", {"seconds": 0.01})
    with pytest.raises(UpstreamTimeout):
        await upstream.call("slow", {"steps": 500, "step_seconds": 0.02}, timeout_seconds=0.2)

    def logged() -> list[logging.LogRecord]:
        return [
            record
            for record in caplog.records
            if "slow cancelled" in record.getMessage()
            and getattr(record, "mcp_server", None) == "noisy"
        ]

    await until(lambda: bool(logged()), what="the child's stderr line logged")
    assert logged()[0].getMessage().startswith("noisy stderr: slow cancelled at ")
