"""The modes admins set for tool-call hooks, over the ones their plugins declare.

Kept like the servers: a row per hook in the gateway's database, each change published
as ``mcp.hook.updated`` in the change's own transaction, and every replica reading the
rows again when told (the :class:`~gateway.mcpservers.events.Follower`) into its
:class:`~gateway.mcpfront.hooks.applied.ModeOverrides`, which its hooks apply.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col, select

from gateway.mcpfront.hooks.applied import CatalogHooks
from gateway.mcpfront.hooks.declared import HOOK_NAME, Hook, Mode
from gateway.mcpservers.tables import HookModeRow
from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database, naive_utc
from meshkit.errors import invalid_field
from meshkit.events.bus import Publisher
from meshkit.identity import Identity, event_actor
from plugmesh.events.v1 import mcp_server_events_pb2
from plugmesh.mcp.v1 import servers_pb2
from plugmesh.options.v1 import options_pb2

__all__ = ["HookModes", "mode_of", "valid_hook_name"]

_NAMES = {mode.name: mode for mode in Mode}


class HookModes:
    """Reads and sets the overrides; tells this replica's hooks at once.

    Args:
        database: The gateway's database.
        publisher: Where ``mcp.hook.updated`` goes (the outbox).
        hooks: This replica's hooks, whose overrides are kept current here.
        clock: Tells the time of changes.
    """

    def __init__(
        self,
        database: Database,
        publisher: Publisher,
        hooks: CatalogHooks,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._db = database
        self._publisher = publisher
        self._hooks = hooks
        self._clock = clock

    async def apply(self) -> None:
        """Hold exactly the overrides the database holds."""
        async with self._db.read() as session:
            rows = list(await session.scalars(select(HookModeRow)))
        self._hooks.overrides.replace(
            {row.name: _NAMES[row.mode] for row in rows if row.mode in _NAMES}
        )

    async def set(self, actor: Identity, name: str, mode: Mode | None) -> servers_pb2.Hook:
        """Set the mode of the hook ``name`` (None clears it); the hook as it now applies."""
        async with self._db.transaction() as session:
            await session.execute(delete(HookModeRow).where(col(HookModeRow.name) == name))
            if mode is not None:
                session.add(
                    HookModeRow(name=name, mode=mode.name, update_time=naive_utc(self._clock.now()))
                )
            changed = servers_pb2.Hook(name=name, mode_override=_value(mode))
            payload = mcp_server_events_pb2.McpHookUpdated(actor=event_actor(actor), hook=changed)
            self._publisher.publish(session, payload, subject=f"mcp/hooks/{name}")
        await self.apply()
        return self.view(name)

    def views(self) -> list[servers_pb2.Hook]:
        """Every hook declared, overridden or required, by name."""
        declared = {hook.name: hook for hook in self._hooks.declared()}
        names = sorted(set(declared) | set(self._hooks.overrides.all()) | self._hooks.required)
        return [self._view(name, declared.get(name)) for name in names]

    def view(self, name: str) -> servers_pb2.Hook:
        """The hook ``name`` as it applies now."""
        found = next((hook for hook in self._hooks.declared() if hook.name == name), None)
        return self._view(name, found)

    def _view(self, name: str, hook: Hook | None) -> servers_pb2.Hook:
        override = self._hooks.overrides.get(name)
        view = servers_pb2.Hook(
            name=name,
            mode_override=_value(override),
            serving_instances=self._hooks.serving_instances(name),
            required=name in self._hooks.required,
        )
        if hook is not None:
            view.declared.CopyFrom(hook.declaration)
            view.mode = (override or hook.mode).value
        elif override is not None:
            view.mode = override.value
        elif view.required:
            view.mode = Mode.ENFORCE.value  # it denies every call while absent
        return view


def valid_hook_name(name: str, field: str) -> str:
    """``name`` when it can name a plugin, and so a hook.

    Raises:
        InvalidArgument: It cannot.
    """
    if not name:
        raise invalid_field(field, "is required")
    if not HOOK_NAME.fullmatch(name):
        raise invalid_field(
            field, "must be a plugin's name: lower-case letters, digits, '_' and '-', up to 63"
        )
    return name


def mode_of(value: options_pb2.HookMode.ValueType, field: str) -> Mode | None:
    """The override a request asks for: None for HOOK_MODE_UNSPECIFIED (clear it).

    Raises:
        InvalidArgument: ``value`` is no mode.
    """
    if value == options_pb2.HOOK_MODE_UNSPECIFIED:
        return None
    try:
        return Mode(value)
    except ValueError:
        raise invalid_field(field, f"is not a hook mode: {value}") from None


def _value(mode: Mode | None) -> options_pb2.HookMode.ValueType:
    return mode.value if mode is not None else options_pb2.HOOK_MODE_UNSPECIFIED
