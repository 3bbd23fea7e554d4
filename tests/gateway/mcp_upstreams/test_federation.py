"""Every upstream under exposed names: apply(), the listing, calls, change listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.spec import UpstreamSpec
from gateway.mcpfront.upstream import State
from gateway.mcpfront.upstream_errors import UnknownTool, UpstreamDied, UpstreamNotReady
from tests.gateway.mcp_upstreams.conftest import (
    SETTINGS,
    process_gone,
    ready,
    stdio_transport,
)
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    upstreams = Upstreams(SETTINGS)
    yield upstreams
    await upstreams.close()


class Told:
    """A listener that counts how often it was told."""

    def __init__(self, upstreams: Upstreams) -> None:
        self.times = 0
        upstreams.add_listener(self)

    def __call__(self) -> None:
        self.times += 1


def spec(name: str, *options: str, **fields: Any) -> UpstreamSpec:
    return UpstreamSpec(name=name, transport=stdio_transport(*options), **fields)


async def all_ready(upstreams: Upstreams) -> None:
    for status in upstreams.statuses():
        upstream = upstreams.get(status.name)
        assert upstream is not None
        if upstream.spec.enabled:
            await ready(upstream)


async def pid(upstreams: Upstreams, server: str) -> int:
    result = await upstreams.call_tool(server, "pid")
    value = result["structuredContent"]["result"]
    assert isinstance(value, int)
    return value


def listed(upstreams: Upstreams, server: str | None = None) -> list[str]:
    return [tool.name for tool in upstreams.list_tools(server)]


async def test_tools_are_listed_and_called_by_exposed_and_by_own_names(
    upstreams: Upstreams,
) -> None:
    await upstreams.apply([spec("alpha", include_tools=("echo", "add")), spec("beta-2")])
    await all_ready(upstreams)

    beta = listed(upstreams, "beta-2")
    assert "echo" in beta
    assert listed(upstreams) == ["alpha__add", "alpha__echo", *(f"beta-2__{n}" for n in beta)]
    assert listed(upstreams, "alpha") == ["add", "echo"]
    assert listed(upstreams, "nope") == []

    exposed = upstreams.find_tool(None, "alpha__add")
    own = upstreams.find_tool("alpha", "add")
    assert exposed is not None
    assert own is not None
    assert exposed.input_schema == own.input_schema
    assert exposed.input_schema["required"] == ["a", "b"]
    assert upstreams.find_tool(None, "alpha__slow") is None

    by_exposed = await upstreams.call_tool(None, "alpha__echo", {"text": "a"})
    by_own = await upstreams.call_tool("beta-2", "echo", {"text": "b"})
    assert by_exposed["content"][0]["text"] == "echo:a"
    assert by_own["content"][0]["text"] == "echo:b"
    assert upstreams.resolve("beta-2__add")[1] == "add"


@pytest.mark.parametrize(
    ("server", "name"),
    [
        (None, "alpha__nope"),
        (None, "nope__echo"),
        (None, "alpha_echo"),
        (None, "alpha__slow"),  # excluded by the spec
        ("nope", "echo"),
        ("alpha", "slow"),
    ],
    ids=[
        "unknown-tool",
        "unknown-server",
        "one-underscore",
        "excluded",
        "no-server",
        "own-excluded",
    ],
)
async def test_unknown_names_are_refused(
    upstreams: Upstreams, server: str | None, name: str
) -> None:
    await upstreams.apply([spec("alpha", exclude_tools=("slow",))])
    await all_ready(upstreams)

    with pytest.raises(UnknownTool):
        await upstreams.call_tool(server, name, {})


async def test_listeners_are_told_when_a_server_is_ready_and_when_its_tools_change(
    upstreams: Upstreams,
) -> None:
    told = Told(upstreams)
    await upstreams.apply([spec("alpha")])
    await all_ready(upstreams)
    await until(lambda: told.times >= 1, what="the listener told")
    before = told.times

    added = (await upstreams.call_tool(None, "alpha__grow"))["structuredContent"]["result"]

    await until(lambda: f"alpha__{added}" in listed(upstreams), what="the new tool listed")
    assert told.times > before
    result = await upstreams.call_tool(None, f"alpha__{added}")
    assert result["content"][0]["text"] == "extra!"


async def test_a_failing_servers_tools_leave_the_list_until_it_is_back(
    upstreams: Upstreams,
) -> None:
    told = Told(upstreams)
    await upstreams.apply([spec("alpha"), spec("beta")])
    await all_ready(upstreams)
    with_both = told.times

    with pytest.raises(UpstreamDied):
        await upstreams.call_tool(None, "alpha__die")

    await until(
        lambda: not any(name.startswith("alpha__") for name in listed(upstreams)),
        what="alpha's tools unlisted",
    )
    assert told.times > with_both
    assert "beta__echo" in listed(upstreams)
    await until(lambda: "alpha__echo" in listed(upstreams), what="alpha listed again")


async def test_apply_updates_filters_in_place_restarts_changed_and_stops_removed(
    upstreams: Upstreams,
) -> None:
    told = Told(upstreams)
    await upstreams.apply([spec("keep"), spec("change"), spec("drop")])
    await all_ready(upstreams)
    pids = {name: await pid(upstreams, name) for name in ("keep", "change", "drop")}
    before = told.times

    await upstreams.apply(
        [
            spec("keep", exclude_tools=("e*",), max_concurrent_calls=2),
            spec("change", "--page-size", "2"),
        ]
    )
    await all_ready(upstreams)

    assert [status.name for status in upstreams.statuses()] == ["change", "keep"]
    assert await pid(upstreams, "keep") == pids["keep"]
    assert "keep__echo" not in listed(upstreams)
    assert "keep__add" in listed(upstreams)
    assert await pid(upstreams, "change") != pids["change"]
    assert process_gone(pids["change"])
    assert process_gone(pids["drop"])
    assert not any(name.startswith("drop__") for name in listed(upstreams))
    assert told.times > before


async def test_a_disabled_server_is_shown_but_not_listed(upstreams: Upstreams) -> None:
    await upstreams.apply([spec("on"), spec("off", enabled=False)])
    await all_ready(upstreams)

    assert {status.name: status.state for status in upstreams.statuses()} == {
        "off": State.DISABLED,
        "on": State.READY,
    }
    assert not any(name.startswith("off__") for name in listed(upstreams))
    with pytest.raises(UpstreamNotReady):
        await upstreams.call_tool("off", "echo", {"text": "x"})

    await upstreams.apply([spec("on"), spec("off")])
    await all_ready(upstreams)
    assert "off__echo" in listed(upstreams)


async def test_two_specs_with_one_name_are_refused(upstreams: Upstreams) -> None:
    with pytest.raises(ValueError, match="'twin'"):
        await upstreams.apply([spec("twin"), spec("twin", enabled=False)])


async def test_close_stops_every_child_and_may_be_called_twice(upstreams: Upstreams) -> None:
    await upstreams.apply([spec("one"), spec("two")])
    await all_ready(upstreams)
    pids = [await pid(upstreams, "one"), await pid(upstreams, "two")]

    await asyncio.gather(upstreams.close(), upstreams.close())
    await upstreams.close()

    assert all(process_gone(p) for p in pids)
    assert upstreams.list_tools() == []
    with pytest.raises(RuntimeError):
        await upstreams.apply([spec("one")])
