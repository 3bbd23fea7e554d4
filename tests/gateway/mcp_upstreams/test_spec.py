"""Upstream specs, the tools they serve, and what of a caller's ``_meta`` goes upstream."""

from __future__ import annotations

from typing import Any

import mcp.types as types
import pytest

from gateway.mcpfront.spec import (
    HttpTransport,
    StdioTransport,
    UpstreamSpec,
    inherited_environment,
)
from gateway.mcpfront.tool_names import SkippedTool, served_tools
from gateway.mcpfront.upstream import forwarded_meta

STDIO = StdioTransport(command="server")


@pytest.mark.parametrize(
    "name", ["a", "files", "a-b-2", "0day", "x" * 31], ids=["one", "word", "dashes", "digit", "31"]
)
def test_good_server_names_are_taken(name: str) -> None:
    assert UpstreamSpec(name=name, transport=STDIO).name == name


@pytest.mark.parametrize(
    "name",
    ["", "-a", "Files", "a_b", "a.b", "a/b", "x" * 32],
    ids=["empty", "leading-dash", "upper", "underscore", "dot", "slash", "32"],
)
def test_bad_server_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        UpstreamSpec(name=name, transport=STDIO)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: StdioTransport(command=""), "transport.command"),
        (lambda: StdioTransport(command="x", env={"A=B": "1"}), "transport.env"),
        (lambda: HttpTransport("ftp://host/mcp"), "transport.url"),
        (lambda: HttpTransport("/mcp"), "transport.url"),
        (lambda: UpstreamSpec(name="a", transport=STDIO, call_timeout_seconds=0), "timeout"),
        (lambda: UpstreamSpec(name="a", transport=STDIO, max_concurrent_calls=0), "concurrent"),
        (lambda: UpstreamSpec(name="a", transport="stdio"), "transport"),  # type: ignore[arg-type]
    ],
    ids=["no-command", "env-name", "url-scheme", "url-relative", "timeout", "limit", "transport"],
)
def test_bad_fields_are_refused_naming_the_field(make: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


def test_defaults() -> None:
    spec = UpstreamSpec(name="a", transport=STDIO)

    assert (spec.enabled, spec.call_timeout_seconds, spec.max_concurrent_calls) == (True, 60, 16)
    assert (spec.include_tools, spec.exclude_tools) == ((), ())


def test_secrets_are_not_shown_by_repr() -> None:
    spec = UpstreamSpec(
        name="a",
        transport=StdioTransport(command="server", env={"API_KEY": "s3cr3t-env"}),
    )
    web = UpstreamSpec(
        name="b", transport=HttpTransport("http://h/mcp", headers={"Authorization": "s3cr3t-hdr"})
    )

    for shown in (repr(spec), str(spec), repr(web), str(web)):
        assert "s3cr3t" not in shown
    assert "API_KEY" in repr(spec)
    assert "Authorization" in repr(web)


def test_specs_compare_by_value_and_copy_their_mappings() -> None:
    env = {"A": "1"}
    spec = UpstreamSpec(name="a", transport=StdioTransport(command="x", args=["-v"], env=env))  # type: ignore[arg-type]
    env["A"] = "2"

    assert spec == UpstreamSpec(
        name="a", transport=StdioTransport(command="x", args=("-v",), env={"A": "1"})
    )
    assert hash(spec) == hash(UpstreamSpec(name="a", transport=StdioTransport("x", ("-v",))))


@pytest.mark.parametrize(
    ("include", "exclude", "tool", "served"),
    [
        ((), (), "anything", True),
        (("read_*",), (), "read_file", True),
        (("read_*",), (), "write_file", False),
        ((), ("*_file",), "read_file", False),
        (("read_*",), ("read_secret*",), "read_secrets", False),
        (("Read_*",), (), "read_file", False),
        (("read_?ile",), (), "read_file", True),
    ],
    ids=["no-globs", "included", "not-included", "excluded", "exclude-wins", "case", "question"],
)
def test_include_and_exclude_globs(
    include: tuple[str, ...], exclude: tuple[str, ...], tool: str, served: bool
) -> None:
    spec = UpstreamSpec(name="a", transport=STDIO, include_tools=include, exclude_tools=exclude)

    assert spec.serves(tool) is served


def tool(name: str) -> types.Tool:
    return types.Tool(name=name, input_schema={"type": "object"})


def test_served_tools_leave_out_bad_names_with_their_reasons() -> None:
    spec = UpstreamSpec(name="srv", transport=STDIO, exclude_tools=("hidden*",))
    fits = "f" * (64 - len("srv__"))
    listed = [
        tool("ok.name-1_x"),
        tool("has space"),
        tool("ünïcode"),
        tool(""),
        tool(fits),
        tool(fits + "g"),
        tool("ok.name-1_x"),
        tool("hidden bad name"),
    ]

    served, skipped = served_tools(spec, listed)

    assert [t.name for t in served] == ["ok.name-1_x", fits]
    assert [s.name for s in skipped] == ["has space", "ünïcode", "", fits + "g", "ok.name-1_x"]
    assert "[A-Za-z0-9_.-]" in skipped[0].reason
    assert skipped[3] == SkippedTool(fits + "g", f"'srv__{fits}g' is longer than 64 characters")
    assert "more than once" in skipped[4].reason


@pytest.mark.parametrize(
    ("meta", "forwarded"),
    [
        (None, None),
        ({}, None),
        ({"traceparent": "00-a-b-01"}, {"traceparent": "00-a-b-01"}),
        ({"progressToken": 3, "progress_token": 3}, None),
        ({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "x/y": 1}, {"x/y": 1}),
    ],
    ids=["none", "empty", "trace", "progress-token", "envelope"],
)
def test_forwarded_meta(meta: dict[str, Any] | None, forwarded: dict[str, Any] | None) -> None:
    assert forwarded_meta(meta) == forwarded


def test_a_child_inherits_only_the_basic_variables() -> None:
    environ = {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/h", "AWS_SECRET_ACCESS_KEY": "no"}

    assert inherited_environment(environ) == {"PATH": "/bin", "LANG": "C.UTF-8", "HOME": "/h"}
