"""``plugmesh.toolpins.v1.ToolPinService``: approve a server's tools, list and delete its
pins. Admins only; the tools approved are the ones the gateway serves now, asked of its
``McpServerService`` with the admin's own identity."""

from __future__ import annotations

import grpc

from meshkit.errors import FailedPrecondition, NotFound, Unavailable, invalid_field
from meshkit.grpc_types import Context
from meshkit.identity import caller, require_admin
from plugmesh.mcp.v1 import servers_pb2, servers_pb2_grpc
from plugmesh.toolpins.v1 import toolpins_pb2, toolpins_pb2_grpc
from services.toolpins.pins import ToolPins

__all__ = ["ToolPinServicer"]

#: How long the gateway may take to list a server's tools.
LIST_TIMEOUT_SECONDS = 10.0


class ToolPinServicer(toolpins_pb2_grpc.ToolPinServiceServicer):
    """Serves the pins.

    Args:
        pins: The pins.
        servers: The gateway's admin API of the upstream servers.
        signing_key: The key identities are signed with; None lets nobody in.
    """

    def __init__(
        self,
        pins: ToolPins,
        servers: servers_pb2_grpc.McpServerServiceAsyncStub,
        signing_key: bytes | None,
    ) -> None:
        self._pins = pins
        self._servers = servers
        self._key = signing_key

    async def ApproveServer(
        self, request: toolpins_pb2.ApproveServerRequest, context: Context
    ) -> toolpins_pb2.ApproveServerResponse:
        actor = require_admin(caller(context, self._key, "ApproveServer"), "ApproveServer")
        server = _server(request.server)
        listed = await self._tools(server)
        pins = await self._pins.approve(actor, server, listed)
        return toolpins_pb2.ApproveServerResponse(pins=pins)

    async def ListToolPins(
        self, request: toolpins_pb2.ListToolPinsRequest, context: Context
    ) -> toolpins_pb2.ListToolPinsResponse:
        require_admin(caller(context, self._key, "ListToolPins"), "ListToolPins")
        return toolpins_pb2.ListToolPinsResponse(pins=await self._pins.pins(request.server))

    async def DeleteToolPins(
        self, request: toolpins_pb2.DeleteToolPinsRequest, context: Context
    ) -> toolpins_pb2.DeleteToolPinsResponse:
        actor = require_admin(caller(context, self._key, "DeleteToolPins"), "DeleteToolPins")
        await self._pins.delete(actor, _server(request.server))
        return toolpins_pb2.DeleteToolPinsResponse()

    async def _tools(self, server: str) -> list[servers_pb2.Tool]:
        """The tools the gateway serves of ``server`` now.

        Raises:
            NotFound: The gateway has no such server.
            FailedPrecondition: It is not READY, so its tools are not known.
            Unavailable: The gateway could not be asked.
        """
        try:
            answer = await self._servers.ListServerTools(
                servers_pb2.ListServerToolsRequest(name=server), timeout=LIST_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    f"no MCP server {server!r}",
                    reason="SERVER_NOT_FOUND",
                    metadata={"server": server},
                ) from None
            raise Unavailable(
                f"the gateway could not list {server!r}'s tools: {exc.code().name}",
                reason="SERVERS_UNAVAILABLE",
                metadata={"server": server},
            ) from None
        if answer.status.state != servers_pb2.SERVER_STATE_READY:
            raise FailedPrecondition(
                f"{server!r} is not ready, so its tools are not known; approve it once it is",
                reason="SERVER_NOT_READY",
                metadata={"server": server},
            )
        return list(answer.tools)


def _server(name: str) -> str:
    if not name:
        raise invalid_field("server", "is required")
    return name
