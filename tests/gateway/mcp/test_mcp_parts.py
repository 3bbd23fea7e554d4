"""The MCP front's parts on their own: paths, cursors, settings, metadata, the empty
toolbox."""

from __future__ import annotations

import mcp.types as types
import pytest

from gateway.mcpfront import McpSettings
from gateway.mcpfront.metadata import document, metadata_url, resource_url
from gateway.mcpfront.paging import InvalidCursor, page_of
from gateway.mcpfront.paths import RouteKind, route_of
from gateway.mcpfront.settings import VARIABLES
from launcher.processes import ENVIRONMENT
from meshkit.config import ConfigError

# --- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "server"),
    [
        ("/mcp", RouteKind.ENDPOINT, None),
        ("/mcp/s/alpha", RouteKind.ENDPOINT, "alpha"),
        ("/mcp/s/a-1", RouteKind.ENDPOINT, "a-1"),
        ("/mcp/s/" + "a" * 31, RouteKind.ENDPOINT, "a" * 31),
        ("/.well-known/oauth-protected-resource", RouteKind.METADATA, None),
        ("/.well-known/oauth-protected-resource/mcp", RouteKind.METADATA, None),
    ],
)
def test_the_front_answers_exactly_its_paths(
    path: str, kind: RouteKind, server: str | None
) -> None:
    route = route_of(path)

    assert route is not None
    assert (route.kind, route.server) == (kind, server)


@pytest.mark.parametrize(
    "path",
    [
        "/mcp/",
        "/mcpx",
        "/mcp/s/",
        "/mcp/s/Alpha",
        "/mcp/s/-alpha",
        "/mcp/s/alpha/",
        "/mcp/s/alpha/tools",
        "/mcp/s/" + "a" * 32,
        "/mcp/s/al%2Fpha",
        "/.well-known/oauth-protected-resource/mcp/s/alpha",
    ],
)
def test_other_paths_are_not_the_fronts(path: str) -> None:
    assert route_of(path) is None


# --- cursors ---------------------------------------------------------------------------


def tools(*names: str) -> list[types.Tool]:
    return [types.Tool(name=name, input_schema={"type": "object"}) for name in names]


def names(page: types.ListToolsResult) -> list[str]:
    return [tool.name for tool in page.tools]


def test_pages_follow_name_order_and_end_without_a_cursor() -> None:
    listed = tools("e", "b", "a", "d", "c")

    first = page_of(listed, None, server=None, size=2)
    second = page_of(listed, first.next_cursor, server=None, size=2)
    third = page_of(listed, second.next_cursor, server=None, size=2)

    assert [names(first), names(second), names(third)] == [["a", "b"], ["c", "d"], ["e"]]
    assert third.next_cursor is None


def test_a_page_continues_after_its_cursor_whatever_changed_in_between() -> None:
    first = page_of(tools("a", "b", "c", "d"), None, server="x", size=2)

    later = page_of(tools("0", "a", "c", "d", "e"), first.next_cursor, server="x", size=2)

    assert names(later) == ["c", "d"]


@pytest.mark.parametrize(
    ("cursor", "server"),
    [
        pytest.param("garbage!", None, id="not-base64"),
        pytest.param("bm90IGpzb24", None, id="not-json"),
        pytest.param("eyJ2IjogMn0", None, id="other-version"),
        pytest.param(None, "beta", id="other-view"),
    ],
)
def test_a_cursor_not_made_for_the_view_is_refused(cursor: str | None, server: str | None) -> None:
    made = page_of(tools("a", "b", "c"), None, server="alpha", size=1).next_cursor

    with pytest.raises(InvalidCursor):
        page_of(tools("a", "b", "c"), cursor or made, server=server, size=1)


# --- settings --------------------------------------------------------------------------


def test_every_mcp_variable_is_in_the_mesh_table() -> None:
    documented = {(v.name, v.default) for v in ENVIRONMENT}

    for name, default, _ in VARIABLES:
        assert (name, default) in documented, name


def test_settings_are_read_from_the_environment() -> None:
    settings = McpSettings.from_env(
        {
            "PLUGMESH_GATEWAY_MCP_RESOURCE_URL": "https://mcp.example.com/mcp/",
            "PLUGMESH_GATEWAY_MCP_ALLOWED_HOSTS": "gateway:8080, gateway:*",
            "PLUGMESH_GATEWAY_MCP_ALLOWED_ORIGINS": "https://app.example.com",
            "PLUGMESH_GATEWAY_MCP_PAGE_SIZE": "25",
            "PLUGMESH_GATEWAY_MCP_BODY_LIMIT_BYTES": "1024",
        }
    )
    security = settings.transport_security

    assert settings.resource_url == "https://mcp.example.com/mcp"
    assert (settings.page_size, settings.body_limit_bytes) == (25, 1024)
    assert security.enable_dns_rebinding_protection
    assert {"127.0.0.1:*", "localhost", "mcp.example.com", "gateway:8080", "gateway:*"} <= set(
        security.allowed_hosts
    )
    assert {"http://localhost:*", "https://mcp.example.com", "https://app.example.com"} <= set(
        security.allowed_origins
    )


def test_a_star_among_the_hosts_turns_the_dns_rebinding_checks_off() -> None:
    settings = McpSettings.from_env({"PLUGMESH_GATEWAY_MCP_ALLOWED_HOSTS": "*"})

    assert not settings.transport_security.enable_dns_rebinding_protection


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLUGMESH_GATEWAY_MCP_RESOURCE_URL", "mcp.example.com/mcp"),
        ("PLUGMESH_GATEWAY_MCP_RESOURCE_URL", "ftp://mcp.example.com/mcp"),
        ("PLUGMESH_GATEWAY_MCP_PAGE_SIZE", "0"),
        ("PLUGMESH_GATEWAY_MCP_PAGE_SIZE", "many"),
        ("PLUGMESH_GATEWAY_MCP_BODY_LIMIT_BYTES", "-1"),
        ("PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS", "secrets-guard,Tool Pins"),
    ],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        McpSettings.from_env({variable: value})


def test_required_hooks_are_read_as_a_set_of_plugin_names() -> None:
    settings = McpSettings.from_env(
        {"PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS": " secrets-guard, tool-pins,,secrets-guard "}
    )

    assert settings.required_hooks == frozenset({"secrets-guard", "tool-pins"})


# --- metadata --------------------------------------------------------------------------

SCOPE = {"scheme": "http", "headers": [(b"host", b"127.0.0.1:8080")]}


@pytest.mark.parametrize(
    ("configured", "resource", "where"),
    [
        pytest.param(
            None,
            "http://127.0.0.1:8080/mcp",
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
            id="from-the-request",
        ),
        pytest.param(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            id="configured",
        ),
        pytest.param(
            "https://example.com/tools/mcp",
            "https://example.com/tools/mcp",
            "https://example.com/.well-known/oauth-protected-resource/tools/mcp",
            id="configured-under-a-prefix",
        ),
    ],
)
def test_the_metadata_is_at_the_resources_well_known_path(
    configured: str | None, resource: str, where: str
) -> None:
    assert resource_url(SCOPE, configured) == resource
    assert metadata_url(SCOPE, configured) == where


def test_the_metadata_names_no_authorization_server_without_an_issuer() -> None:
    assert b"authorization_servers" not in document(SCOPE, None, None)
