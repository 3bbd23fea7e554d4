"""Which of an upstream's tools the gateway serves, and under which names.

A tool is offered on ``/mcp`` as ``<server>__<tool>`` and on ``/mcp/s/<server>`` under
its own name. The specification's tool names use ``[A-Za-z0-9_.-]``; some clients refuse
names longer than 64 characters. A tool that breaks either rule is left out, with its
reason, and never spoils the rest of the list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import mcp.types as types

from gateway.mcpfront.spec import UpstreamSpec

__all__ = ["MAX_EXPOSED_NAME_LENGTH", "SEPARATOR", "SkippedTool", "exposed_name", "served_tools"]

SEPARATOR = "__"
MAX_EXPOSED_NAME_LENGTH = 64
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SkippedTool:
    """A tool the upstream lists that the gateway leaves out, and why."""

    name: str
    reason: str


def exposed_name(server: str, tool: str) -> str:
    """The tool's name on ``/mcp``."""
    return f"{server}{SEPARATOR}{tool}"


def served_tools(
    spec: UpstreamSpec, listed: Iterable[types.Tool]
) -> tuple[tuple[types.Tool, ...], tuple[SkippedTool, ...]]:
    """The tools of ``listed`` that ``spec`` serves, and those left out for a bad name.

    Tools the include/exclude globs leave out are neither served nor reported: that is the
    operator's choice, not a fault of the upstream.
    """
    served: list[types.Tool] = []
    skipped: list[SkippedTool] = []
    seen: set[str] = set()
    for tool in listed:
        name = tool.name
        if not spec.serves(name):
            continue
        if not _TOOL_NAME.fullmatch(name):
            skipped.append(
                SkippedTool(name, "the name is empty or has characters outside [A-Za-z0-9_.-]")
            )
        elif len(exposed := exposed_name(spec.name, name)) > MAX_EXPOSED_NAME_LENGTH:
            skipped.append(
                SkippedTool(
                    name,
                    f"{exposed!r} is longer than {MAX_EXPOSED_NAME_LENGTH} characters",
                )
            )
        elif name in seen:
            skipped.append(SkippedTool(name, "the server lists this name more than once"))
        else:
            seen.add(name)
            served.append(tool)
    return tuple(served), tuple(skipped)
