"""The tool-call hooks the mesh declares: :func:`declared_hooks` of a catalog snapshot.

A plugin hooks into the MCP front by serving ``plugmesh.mcp.v1.ToolCallHookService``
beside its own service and declaring, in that service's
``(plugmesh.options.v1.plugin).tool_hook``, how it is called (phases, priority, the
``server/tool`` globs it applies to, mode, failure mode, timeout). Nothing is
configured in the gateway: the registry's catalog says which plugins serve a hook, and
the hook is named after the plugin.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model import Method, Service, Snapshot
from gateway.schemas import Schema
from meshkit.permissions import Effect, PatternError, Rule, validate_pattern
from plugmesh.options.v1 import options_pb2

__all__ = [
    "HOOK_NAME",
    "HOOK_SERVICE",
    "FailureMode",
    "Hook",
    "Mode",
    "Phase",
    "declared_hooks",
]

log = logging.getLogger(__name__)

#: The gRPC service a hook plugin serves.
HOOK_SERVICE = "plugmesh.mcp.v1.ToolCallHookService"
#: A hook's timeout when it declares none.
DEFAULT_TIMEOUT_SECONDS = 1.0
#: What can name a plugin, and so a hook.
HOOK_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


class Phase(enum.Enum):
    """Where a hook runs."""

    PRE = options_pb2.HOOK_PHASE_PRE_TOOL_CALL
    POST = options_pb2.HOOK_PHASE_POST_TOOL_CALL
    FILTER = options_pb2.HOOK_PHASE_FILTER_TOOLS


class Mode(enum.Enum):
    """Whether a hook's verdicts are applied."""

    ENFORCE = options_pb2.HOOK_MODE_ENFORCE
    DRY_RUN = options_pb2.HOOK_MODE_DRY_RUN
    DISABLED = options_pb2.HOOK_MODE_DISABLED


class FailureMode(enum.Enum):
    """What a hook that fails or passes its timeout counts as."""

    FAIL_OPEN = options_pb2.FAILURE_MODE_FAIL_OPEN
    FAIL_CLOSED = options_pb2.FAILURE_MODE_FAIL_CLOSED


_METHODS = {
    Phase.PRE: "PreToolCall",
    Phase.POST: "PostToolCall",
    Phase.FILTER: "FilterTools",
}


@dataclass(frozen=True)
class Hook:
    """One plugin's hook, as it declares it.

    Attributes:
        name: The plugin's name in the registry ("secrets-guard").
        phases: Where it runs.
        priority: Pre-hooks run in ascending priority, post-hooks in descending.
        match: The ``server/tool`` globs it applies to (``*`` when it declares none).
        mode: Whether its verdicts are applied.
        failure_mode: What a failure or a timeout counts as.
        timeout_seconds: How long each answer is waited for.
        methods: The ``ToolCallHookService`` methods of its contract, by phase.
        declaration: The ``tool_hook`` option as the plugin wrote it.
        absent: A required hook that no plugin of the mesh serves now
            (:mod:`~gateway.mcpfront.hooks.required`): it is never called, it fails.
    """

    name: str
    phases: frozenset[Phase]
    priority: int
    match: tuple[Rule, ...]
    mode: Mode
    failure_mode: FailureMode
    timeout_seconds: float
    methods: dict[Phase, Method]
    declaration: options_pb2.ToolHook
    absent: bool = False

    def applies_to(self, server: str, tool: str) -> bool:
        """Whether the hook is called for ``tool`` on ``server``."""
        return any(rule.matches(server, tool) for rule in self.match)

    def runs(self, phase: Phase) -> bool:
        """Whether it is called in ``phase`` at all."""
        return phase in self.phases and self.mode is not Mode.DISABLED


def declared_hooks(snapshot: Snapshot) -> tuple[Hook, ...]:
    """Every hook the snapshot's services declare, by priority and then name."""
    hooks = (_hook_of(service) for service in snapshot.services.values())
    found = [hook for hook in hooks if hook is not None]
    return tuple(sorted(found, key=lambda hook: (hook.priority, hook.name)))


def _hook_of(service: Service) -> Hook | None:
    """The hook ``service`` declares and serves, if it does."""
    schema = service.schema
    if schema is None or HOOK_SERVICE not in service.grpc_services:
        return None
    served = schema.service(HOOK_SERVICE)
    declared = _declaration(service, schema)
    if served is None or declared is None:
        return None
    methods = {
        phase: Method(service.name, served.methods_by_name[name])
        for phase, name in _METHODS.items()
        if name in served.methods_by_name
    }
    phases = frozenset(Phase(p) for p in declared.phases if p in _PHASES)
    return Hook(
        name=service.name,
        phases=frozenset(phase for phase in phases if phase in methods),
        priority=declared.priority,
        match=_globs(service.name, declared.match),
        mode=Mode(declared.mode or options_pb2.HOOK_MODE_ENFORCE),
        failure_mode=FailureMode(declared.failure_mode or options_pb2.FAILURE_MODE_FAIL_CLOSED),
        timeout_seconds=declared.timeout_ms / 1000 or DEFAULT_TIMEOUT_SECONDS,
        methods=methods,
        declaration=declared,
    )


_PHASES = frozenset(phase.value for phase in Phase)


def _declaration(service: Service, schema: Schema) -> options_pb2.ToolHook | None:
    """The ``tool_hook`` of the first of the service's own gRPC services declaring one."""
    for name in service.grpc_services:
        found = schema.service(name) if name != HOOK_SERVICE else None
        if found is None:
            continue
        options = found.GetOptions()
        if not options.HasExtension(options_pb2.plugin):
            continue
        plugin = options.Extensions[options_pb2.plugin]
        if plugin.HasField("tool_hook"):
            return plugin.tool_hook
    return None


def _globs(hook: str, patterns: Sequence[str]) -> tuple[Rule, ...]:
    """The match globs as rules, ``*`` for none; a malformed one is left out with a
    warning (the hook then applies to fewer tools, never to more)."""
    if not patterns:
        return (Rule(Effect.ALLOW, "*"),)
    rules = []
    for pattern in patterns:
        try:
            validate_pattern(pattern)
        except PatternError as exc:
            log.warning("a hook's match glob is ignored", extra={"hook": hook, "error": str(exc)})
            continue
        rules.append(Rule(Effect.ALLOW, pattern))
    return tuple(rules)
