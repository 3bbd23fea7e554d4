"""Upstream servers and plugins side by side (:class:`ToolServers`): a configured
upstream server wins over a plugin of the same name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.plugin_tools import PluginTools
from gateway.mcpfront.spec import StdioTransport, UpstreamSpec
from gateway.mcpfront.tool_servers import ToolServers
from gateway.mcpfront.toolbox import Caller, CallerKind
from plugmesh.registry.v1 import registry_pb2
from tests.gateway.mcp_plugin_tools.test_declared_tools import plugin_snapshot


@contextlib.asynccontextmanager
async def servers(upstream: str) -> AsyncIterator[ToolServers]:
    """The plugin ``things``, and a (disabled) upstream server named ``upstream``."""
    upstreams = Upstreams()
    await upstreams.apply(
        [UpstreamSpec(name=upstream, transport=StdioTransport(command="true"), enabled=False)]
    )
    snapshot = plugin_snapshot("things")
    # Nothing here calls a plugin: no channels are needed.
    plugins = PluginTools(lambda: snapshot, cast(Any, None), signing_key=None)
    try:
        yield ToolServers(upstreams, plugins)
    finally:
        await upstreams.close()


@pytest.mark.asyncio
async def test_a_plugin_named_like_an_upstream_server_offers_nothing() -> None:
    async with servers("things") as shadowed:
        assert shadowed.has_server("things")
        assert shadowed.list_tools("things") == []
        assert shadowed.list_tools(None) == []
        assert shadowed.find_tool("things", "get_thing") is None
        assert shadowed.target(None, "things__get_thing") is None
        assert shadowed.target("things", "get_thing") == ("things", "get_thing")


@pytest.mark.asyncio
async def test_a_plugins_tools_are_listed_under_exposed_names_and_their_own() -> None:
    async with servers("elsewhere") as both:
        exposed = [tool.name for tool in both.list_tools(None)]
        own = [tool.name for tool in both.list_tools("things")]

        assert exposed == ["things__get_thing", "things__list_http_things", "things__remove"]
        assert own == ["get_thing", "list_http_things", "remove"]
        assert both.target(None, "things__remove") == ("things", "remove")
        assert both.target("things", "nothing") is None
        assert both.has_server("elsewhere")
        assert both.list_tools("elsewhere") == []


@pytest.mark.asyncio
async def test_an_admin_only_tool_admits_admins_only() -> None:
    person = Caller(id="ada", kind=CallerKind.PERSON)
    admin = Caller(id="root", kind=CallerKind.PERSON, admin=True)
    async with servers("elsewhere") as both:
        assert not both.admits(person, "things", "remove")
        assert both.admits(admin, "things", "remove")
        assert both.admits(person, "things", "get_thing")


def test_a_plugin_without_a_serving_instance_offers_no_tools() -> None:
    down = plugin_snapshot(health=registry_pb2.HEALTH_STATUS_NOT_SERVING)
    up = plugin_snapshot()

    assert PluginTools(lambda: down, cast(Any, None), signing_key=None).offered() == {}
    assert set(PluginTools(lambda: up, cast(Any, None), signing_key=None).offered()) == {"things"}
