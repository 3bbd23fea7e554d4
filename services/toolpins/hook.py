"""The tool-pins hook (``plugmesh.mcp.v1.ToolCallHookService``, FilterTools only, as its
contract declares): hides the offered tools that differ from their pins. The gateway
asks it on every listing and every call, so a hidden tool is not callable either."""

from __future__ import annotations

from meshkit.grpc_types import Context
from plugmesh.mcp.v1 import hooks_pb2, hooks_pb2_grpc
from services.toolpins.pins import Offered, ToolPins

__all__ = ["ToolPinsHook"]


class ToolPinsHook(hooks_pb2_grpc.ToolCallHookServiceServicer):
    """Hides tools whose definitions changed since their server was approved."""

    def __init__(self, pins: ToolPins) -> None:
        self._pins = pins

    async def FilterTools(
        self, request: hooks_pb2.FilterToolsRequest, context: Context
    ) -> hooks_pb2.FilterToolsResponse:
        offered = [Offered(listed.server, listed.tool) for listed in request.tools]
        hidden = await self._pins.differing(offered)
        return hooks_pb2.FilterToolsResponse(hidden=sorted(hidden))

    async def PreToolCall(
        self, request: hooks_pb2.PreToolCallRequest, context: Context
    ) -> hooks_pb2.PreToolCallResponse:
        # Not among its phases, so never called by the gateway.
        return hooks_pb2.PreToolCallResponse(allow=hooks_pb2.Allow())

    async def PostToolCall(
        self, request: hooks_pb2.PostToolCallRequest, context: Context
    ) -> hooks_pb2.PostToolCallResponse:
        # Not among its phases, so never called by the gateway.
        return hooks_pb2.PostToolCallResponse(allow=hooks_pb2.Allow())
