"""The hooks an operator requires (``PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS``): a tool call
passes only when each of them runs and lets it.

The gateway knows a hook only while its plugin is in the registry's catalog. A plugin that
crashes is dropped when its lease runs out, and its hook with it: a FAIL_CLOSED guard
would stop guarding at the moment it is most needed (and a gateway started while the guard
is down would never know of it). A required hook does not vanish:

- while no plugin of the mesh serves it, it stands first in the chain as an *absent* hook
  that is never called and fails, so every call is denied, recorded as that hook's failure
  in the call's ``tool.call.*`` events (and so in the audit log);
- while its plugin is there, its failures (a timeout, no serving instance, a bad answer)
  count as denies whatever failure mode it declares.

An admin may still set its mode (DRY_RUN, DISABLED) through the hooks API, as for any
hook: that is a recorded decision, not an accident. Listings are not held back: a
``tools/list`` reveals nothing a call could do.
"""

from __future__ import annotations

import dataclasses

from gateway.mcpfront.hooks.declared import DEFAULT_TIMEOUT_SECONDS, FailureMode, Hook, Mode, Phase
from meshkit.permissions import Effect, Rule
from plugmesh.options.v1 import options_pb2

__all__ = ["HookAbsent", "absent_hook", "as_required"]

#: Absent hooks run before every declared one (priorities are int32).
_FIRST = -(2**31) - 1


class HookAbsent(Exception):
    """A required hook is served by no plugin of the mesh."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no plugin of the mesh serves the required hook {name!r}")
        self.name = name


def absent_hook(name: str) -> Hook:
    """The stand-in of the required hook ``name`` while no plugin serves it."""
    return Hook(
        name=name,
        phases=frozenset({Phase.PRE}),
        priority=_FIRST,
        match=(Rule(Effect.ALLOW, "*"),),
        mode=Mode.ENFORCE,
        failure_mode=FailureMode.FAIL_CLOSED,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        methods={},
        declaration=options_pb2.ToolHook(),
        absent=True,
    )


def as_required(hook: Hook) -> Hook:
    """``hook`` as a required hook: every failure of it counts as a deny."""
    return dataclasses.replace(hook, failure_mode=FailureMode.FAIL_CLOSED)
