"""``plugmesh.mcp.v1.McpServerService``: requests in, responses out.

Each method authorizes the caller (:mod:`gateway.mcpservers.access`), turns the request
into domain terms (:mod:`gateway.mcpservers.convert`, which names the field that is
wrong), asks :class:`~gateway.mcpservers.core.McpServers`, and turns the answer back,
with what this replica sees of the server. Errors are :mod:`meshkit.errors` exceptions;
the server's interceptor turns them into ``google.rpc.Status``.
"""

from __future__ import annotations

from gateway.mcpfront.hooks.wire import tool_message
from gateway.mcpservers.access import Access
from gateway.mcpservers.convert import (
    changed_server,
    new_server,
    served_tools,
    server_to_proto,
    status_to_proto,
    valid_name,
)
from gateway.mcpservers.core import McpServers
from gateway.mcpservers.hook_modes import HookModes, mode_of, valid_hook_name
from meshkit.errors import invalid_field
from meshkit.grpc_types import Context
from meshkit.paging import decode_name_token, encode_page_token, page_size
from plugmesh.mcp.v1 import servers_pb2, servers_pb2_grpc

__all__ = ["McpServerServicer"]

#: The longest a refresh waits for the server's answer.
REFRESH_WAIT_SECONDS = 10.0


class McpServerServicer(servers_pb2_grpc.McpServerServiceServicer):
    """Serves the admin API of the upstream MCP servers over
    :class:`~gateway.mcpservers.core.McpServers`."""

    def __init__(self, servers: McpServers, hooks: HookModes, access: Access) -> None:
        self._servers = servers
        self._hooks = hooks
        self._access = access

    async def CreateServer(
        self, request: servers_pb2.CreateServerRequest, context: Context
    ) -> servers_pb2.CreateServerResponse:
        """Add an upstream server; this replica starts connecting at once."""
        actor = self._access.admin(context, "CreateServer")
        if not request.HasField("server"):
            raise invalid_field("server", "is required")
        spec, description = new_server(request.server)
        server = await self._servers.create(actor, spec, description=description)
        return servers_pb2.CreateServerResponse(
            server=server_to_proto(server, self._servers.status(server.name))
        )

    async def GetServer(
        self, request: servers_pb2.GetServerRequest, context: Context
    ) -> servers_pb2.GetServerResponse:
        """An upstream server, with what this replica sees of it."""
        self._access.admin(context, "GetServer")
        server = await self._servers.get(valid_name(request.name))
        return servers_pb2.GetServerResponse(
            server=server_to_proto(server, self._servers.status(server.name))
        )

    async def ListServers(
        self, request: servers_pb2.ListServersRequest, context: Context
    ) -> servers_pb2.ListServersResponse:
        """Upstream servers by name, a page at a time."""
        self._access.admin(context, "ListServers")
        size = page_size(request.page_size)
        after = decode_name_token(request.page_token)
        servers, more = await self._servers.page(after=after, limit=size)
        response = servers_pb2.ListServersResponse(
            servers=[server_to_proto(s, self._servers.status(s.name)) for s in servers]
        )
        if more and servers:
            response.next_page_token = encode_page_token(servers[-1].name)
        return response

    async def UpdateServer(
        self, request: servers_pb2.UpdateServerRequest, context: Context
    ) -> servers_pb2.UpdateServerResponse:
        """Change an upstream server; this replica applies the change at once."""
        actor = self._access.admin(context, "UpdateServer")
        if not request.HasField("server"):
            raise invalid_field("server", "is required")
        name = valid_name(request.server.name, "server.name")
        server = await self._servers.update(
            actor, name, lambda old: changed_server(old, request.server, request.update_mask)
        )
        return servers_pb2.UpdateServerResponse(
            server=server_to_proto(server, self._servers.status(server.name))
        )

    async def DeleteServer(
        self, request: servers_pb2.DeleteServerRequest, context: Context
    ) -> servers_pb2.DeleteServerResponse:
        """Remove an upstream server; its tools leave every list."""
        actor = self._access.admin(context, "DeleteServer")
        await self._servers.delete(actor, valid_name(request.name))
        return servers_pb2.DeleteServerResponse()

    async def ListServerTools(
        self, request: servers_pb2.ListServerToolsRequest, context: Context
    ) -> servers_pb2.ListServerToolsResponse:
        """The tools this replica serves of the server, and its status."""
        self._access.admin(context, "ListServerTools")
        server = await self._servers.get(valid_name(request.name))
        status = self._servers.status(server.name)
        response = servers_pb2.ListServerToolsResponse()
        if status is not None:
            response.tools.extend(
                tool_message(server.name, tool.name, tool)
                for tool in sorted(served_tools(status), key=lambda tool: tool.name)
            )
            response.status.CopyFrom(status_to_proto(status))
        return response

    async def RefreshServer(
        self, request: servers_pb2.RefreshServerRequest, context: Context
    ) -> servers_pb2.RefreshServerResponse:
        """Fetch the server's tools again (or connect again) now, and say how it went."""
        self._access.admin(context, "RefreshServer")
        remaining = context.time_remaining()
        wait = REFRESH_WAIT_SECONDS if remaining is None else min(REFRESH_WAIT_SECONDS, remaining)
        status = await self._servers.refresh(
            valid_name(request.name), timeout_seconds=max(wait - 0.5, 0.0)
        )
        response = servers_pb2.RefreshServerResponse()
        if status is not None:
            response.status.CopyFrom(status_to_proto(status))
        return response

    async def ListHooks(
        self, request: servers_pb2.ListHooksRequest, context: Context
    ) -> servers_pb2.ListHooksResponse:
        """The hooks declared or overridden, as this replica applies them."""
        self._access.admin(context, "ListHooks")
        return servers_pb2.ListHooksResponse(hooks=self._hooks.views())

    async def UpdateHook(
        self, request: servers_pb2.UpdateHookRequest, context: Context
    ) -> servers_pb2.UpdateHookResponse:
        """Set or clear an admin's mode for a hook; this replica applies it at once."""
        actor = self._access.admin(context, "UpdateHook")
        if not request.HasField("hook"):
            raise invalid_field("hook", "is required")
        name = valid_hook_name(request.hook.name, "hook.name")
        mode = mode_of(request.hook.mode_override, "hook.mode_override")
        return servers_pb2.UpdateHookResponse(hook=await self._hooks.set(actor, name, mode))
