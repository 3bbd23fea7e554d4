"""The hooks as the MCP front applies them: :class:`CatalogHooks`, the hooks the catalog's
plugins declare (:func:`~gateway.mcpfront.hooks.declared.declared_hooks`), with the modes
admins set over theirs (:class:`ModeOverrides`) and the hooks the operator requires
(:mod:`~gateway.mcpfront.hooks.required`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from gateway.mcpfront.hooks.declared import Hook, Mode, Phase, declared_hooks
from gateway.mcpfront.hooks.required import absent_hook, as_required
from gateway.model import Snapshot
from meshkit.permissions import Rule

__all__ = ["CatalogHooks", "ModeOverrides"]


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
        required: The hooks every call must pass (:mod:`~gateway.mcpfront.hooks.required`);
            none by default.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        overrides: ModeOverrides | None = None,
        *,
        required: frozenset[str] = frozenset(),
    ) -> None:
        self._snapshot = snapshot
        self.overrides = overrides if overrides is not None else ModeOverrides()
        self.required = required
        self._read: tuple[int, int] = (-1, -1)
        self._hooks: tuple[Hook, ...] = ()

    def __call__(self) -> tuple[Hook, ...]:
        """The hooks as they apply now, by ascending priority."""
        snapshot = self._snapshot()
        read = (snapshot.schema_generation, self.overrides.version)
        if read != self._read:
            self._hooks = tuple(self._applied(hook) for hook in self._with_required(snapshot))
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

    def _with_required(self, snapshot: Snapshot) -> list[Hook]:
        declared = declared_hooks(snapshot)
        served = {hook.name for hook in declared}
        absent = [absent_hook(name) for name in sorted(self.required - served)]
        return [*absent, *(as_required(h) if h.name in self.required else h for h in declared)]

    def _applied(self, hook: Hook) -> Hook:
        mode = self.overrides.get(hook.name)
        return hook if mode is None else dataclasses.replace(hook, mode=mode)
