"""What a tool's definition is, for pinning: its name, title, description, input and
output schemas and annotations (not its name on ``/mcp``), as canonical JSON, and the
SHA-256 of that."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from plugmesh.mcp.v1 import servers_pb2

__all__ = ["changed_fields", "definition", "digest", "tool_of"]

_NOT_DEFINITION = "exposed_name"


def definition(tool: servers_pb2.Tool) -> dict[str, Any]:
    """The tool's definition as JSON (proto field names)."""
    found = json_format.MessageToDict(tool, preserving_proto_field_name=True)
    found.pop(_NOT_DEFINITION, None)
    return found


def digest(found: Mapping[str, Any]) -> str:
    """The SHA-256 of a definition as canonical JSON, hex."""
    canonical = json.dumps(found, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_fields(approved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ, by name."""
    return sorted(key for key in {*approved, *current} if approved.get(key) != current.get(key))


def tool_of(found: Mapping[str, Any]) -> servers_pb2.Tool:
    """A stored definition back as a message."""
    return json_format.ParseDict(dict(found), servers_pb2.Tool())
