"""The secrets guard's hook into the MCP gateway's tool calls
(``plugmesh.mcp.v1.ToolCallHookService``, declared in its contract's ``tool_hook``).

- Before a call: every string of the arguments (keys included) is scanned; a call that
  carries a credential is denied, the reason naming the kinds and where they are, never
  the credential, so that the model can take it out and try again.
- After it: every credential in the result's strings is redacted (``[redacted]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format

from meshkit.grpc_types import Context
from plugmesh.mcp.v1 import hooks_pb2, hooks_pb2_grpc
from services.secretsguard.detectors import scan

__all__ = ["SecretsGuardHook"]

#: At most this many places are named in a denial.
_NAMED = 5


class SecretsGuardHook(hooks_pb2_grpc.ToolCallHookServiceServicer):
    """Denies calls carrying credentials; redacts them from results."""

    async def PreToolCall(
        self, request: hooks_pb2.PreToolCallRequest, context: Context
    ) -> hooks_pb2.PreToolCallResponse:
        arguments = json_format.MessageToDict(request.call.arguments)
        found = [
            (path, finding.detector)
            for path, text in _strings(arguments, "arguments")
            for finding in scan(text)
        ]
        if not found:
            return hooks_pb2.PreToolCallResponse(allow=hooks_pb2.Allow())
        places = ", ".join(f"{kind} in {path}" for path, kind in found[:_NAMED])
        more = f" and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
        reason = (
            f"refused by the secrets guard: the arguments carry a credential ({places}{more}); "
            "take it out and call again"
        )
        return hooks_pb2.PreToolCallResponse(deny=hooks_pb2.Deny(reason=reason))

    async def PostToolCall(
        self, request: hooks_pb2.PostToolCallRequest, context: Context
    ) -> hooks_pb2.PostToolCallResponse:
        result = json_format.MessageToDict(request.result)
        secrets = {
            text[finding.start : finding.end]
            for _, text in _strings(result, "result")
            for finding in scan(text)
        }
        if not secrets:
            return hooks_pb2.PostToolCallResponse(allow=hooks_pb2.Allow())
        # Longest first: a credential that contains another is replaced whole.
        values = sorted(secrets, key=len, reverse=True)
        return hooks_pb2.PostToolCallResponse(redact=hooks_pb2.Redact(values=values))

    async def FilterTools(
        self, request: hooks_pb2.FilterToolsRequest, context: Context
    ) -> hooks_pb2.FilterToolsResponse:
        # Not among its phases, so never called by the gateway: it hides nothing.
        return hooks_pb2.FilterToolsResponse()


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in ``value`` (object keys too), with where it is (a key that is a
    credential itself is not named in the path)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path} (a key)", key
            named = "<credential>" if scan(key) else key
            yield from _strings(item, f"{path}.{named}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
