"""Plugins hooking into the MCP front's tool calls and listings.

- :mod:`~gateway.mcpfront.hooks.declared`: which plugins declare a hook, and how
  (``(plugmesh.options.v1.plugin).tool_hook``), read from the registry's catalog;
- :mod:`~gateway.mcpfront.hooks.chain`: the order and meaning of their verdicts;
- :mod:`~gateway.mcpfront.hooks.wire`: the ``plugmesh.mcp.v1`` messages, and the result
  changes hooks ask for;
- :mod:`~gateway.mcpfront.hooks.transport`: the calls, to a serving instance;
- :mod:`~gateway.mcpfront.hooks.decision`: what each hook decided, for the events.
"""

from gateway.mcpfront.hooks.applied import CatalogHooks
from gateway.mcpfront.hooks.chain import NO_HOOKS, After, Before, HookChain, HookTransport
from gateway.mcpfront.hooks.decision import Decision, Verdict
from gateway.mcpfront.hooks.declared import FailureMode, Hook, Mode, Phase
from gateway.mcpfront.hooks.transport import MeshHookTransport
from gateway.mcpfront.hooks.wire import HookedCall

__all__ = [
    "NO_HOOKS",
    "After",
    "Before",
    "CatalogHooks",
    "Decision",
    "FailureMode",
    "Hook",
    "HookChain",
    "HookTransport",
    "HookedCall",
    "MeshHookTransport",
    "Mode",
    "Phase",
    "Verdict",
]
