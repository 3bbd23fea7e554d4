"""The tool-call hooks the mesh declares: :func:`declared_hooks` of a catalog snapshot.

A plugin hooks into the MCP front by serving ``plugmesh.mcp.v1.ToolCallHookService``
beside its own service and declaring, in that service's
``(plugmesh.options.v1.plugin).tool_hook``, how it is called (phases, priority, the
``server/tool`` globs it applies to, mode, failure mode, timeout). Nothing is
configured in the gateway: the registry's catalog says which plugins serve a hook, and
the hook is named after the plugin.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway.model import Method, Service, Snapshot
from gateway.schemas import Schema
from meshkit.permissions import Effect, PatternError, Rule, validate_pattern
from plugmesh.options.v1 import options_pb2

__all__ = [
    "HOOK_SERVICE",
    "CatalogHooks",
    "FailureMode",
    "Hook",
    "Mode",
    "ModeOverrides",
    "Phase",
    "declared_hooks",
]

log = logging.getLogger(__name__)

#: The gRPC service a hook plugin serves.
HOOK_SERVICE = "plugmesh.mcp.v1.ToolCallHookService"
#: A hook's timeout when it declares none.
DEFAULT_TIMEOUT_SECONDS = 1.0


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


class ModeOverrides:
    """The modes admins set over the declared ones, by hook name, as this replica last
    read them (the admin API keeps them: :mod:`gateway.mcpservers.hook_modes`)."""

    def __init__(self) -> None:
        self._modes: dict[str, Mode] = {}
        self._listeners: list[Callable[[], None]] = []
        #: Grows whenever the overrides change.
        self.version = 0

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change."""
        self._listeners.append(listener)

    def get(self, name: str) -> Mode | None:
        """The mode set for the hook ``name``, if one is."""
        return self._modes.get(name)

    def all(self) -> dict[str, Mode]:
        """Every override, by name."""
        return dict(self._modes)

    def replace(self, modes: Mapping[str, Mode]) -> None:
        """Hold ``modes`` from now on."""
        if dict(modes) != self._modes:
            self._modes = dict(modes)
            self.version += 1
            for listener in tuple(self._listeners):
                listener()


class CatalogHooks:
    """The hooks a catalog's current snapshot declares, with the modes admins set over
    theirs; read again only when a contract changed (a service came, left or registered
    a new schema) or an override did. Health changes need no reading: calls go to
    serving instances anyway.

    Args:
        snapshot: The catalog's current snapshot, asked on every call.
        overrides: The modes admins set; none by default.
    """

    def __init__(
        self, snapshot: Callable[[], Snapshot], overrides: ModeOverrides | None = None
    ) -> None:
        self._snapshot = snapshot
        self.overrides = overrides if overrides is not None else ModeOverrides()
        self._read: tuple[int, int] = (-1, -1)
        self._hooks: tuple[Hook, ...] = ()

    def __call__(self) -> tuple[Hook, ...]:
        """The hooks as they apply now, by ascending priority."""
        snapshot = self._snapshot()
        read = (snapshot.schema_generation, self.overrides.version)
        if read != self._read:
            self._hooks = tuple(self._applied(hook) for hook in declared_hooks(snapshot))
            self._read = read
        return self._hooks

    def declared(self) -> tuple[Hook, ...]:
        """The hooks as their plugins declare them."""
        return declared_hooks(self._snapshot())

    def filtering(self) -> tuple[tuple[str, Mode, tuple[Rule, ...]], ...]:
        """What decides which tools the FilterTools hooks may hide: each one's name, mode
        and globs (a change of it may change what callers list)."""
        return tuple((h.name, h.mode, h.match) for h in self() if Phase.FILTER in h.phases)

    def serving_instances(self, name: str) -> int:
        """How many instances of the hook's plugin serve."""
        service = self._snapshot().service(name)
        return len(service.serving_instances) if service is not None else 0

    def _applied(self, hook: Hook) -> Hook:
        mode = self.overrides.get(hook.name)
        return hook if mode is None else dataclasses.replace(hook, mode=mode)
