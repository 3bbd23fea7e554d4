"""The "your tools" view's server side: what the signed-in caller may call through the MCP
front, and why.

Any signed-in caller (a person or a machine user, admin or not) may ask about themselves:
the list is the MCP front's own ``tools/list`` of ``/mcp`` for that caller (its
permissions, the plugins' admission and the hooks' filters applied), and each decision is
:func:`meshkit.permissions.decide` on the caller's permissions as the gateway verified
them, the function ``tools/call`` applies and the users plugin's CheckPermission runs.
Admins asking about someone else use that plugin's RPCs instead (the page does).

Decisions are answered in the JSON of ``plugmesh.users.v1.CheckPermissionResponse``, so
the page explains them all alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from google.protobuf import json_format

from gateway.mcpfront.toolbox import Caller, ListedTool
from meshkit.permissions import Decision, decide
from meshkit.permissions.convert import matched_rule_to_proto, reason_to_proto
from plugmesh.users.v1 import users_pb2

__all__ = ["CallableTools", "decision_view", "tools_view"]


class CallableTools(Protocol):
    """The MCP front's tools per caller
    (:meth:`gateway.mcpfront.federated.FederatedTools.callable_tools`)."""

    async def callable_tools(self, caller: Caller) -> Sequence[ListedTool]:
        """The tools ``/mcp`` lists to ``caller``, in its order."""
        ...


async def tools_view(tools: CallableTools, caller: Caller) -> dict[str, Any]:
    """The tools ``caller`` may call, each with the decision that allows it."""
    listed = await tools.callable_tools(caller)
    return {
        "tools": [
            {
                "server": tool.server,
                "tool": tool.tool,
                "name": tool.listed_name,
                "description": tool.description,
                "decision": decision_view(decide(caller.permissions, tool.server, tool.tool)),
            }
            for tool in listed
        ]
    }


def decision_view(decision: Decision) -> dict[str, Any]:
    """``decision`` as the JSON of ``plugmesh.users.v1.CheckPermissionResponse``."""
    message = users_pb2.CheckPermissionResponse(
        allowed=decision.allowed,
        reason=reason_to_proto(decision.reason),
        matched_rule=matched_rule_to_proto(decision),
    )
    view = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    del view["policyRevision"]  # the gateway's copy of the permissions has no revision
    return view
