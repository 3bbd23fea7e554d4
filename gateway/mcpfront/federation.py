"""Every upstream MCP server of the gateway, and their tools under exposed names.

:class:`Upstreams` runs one :class:`~gateway.mcpfront.upstream.Upstream` per spec and
answers what the MCP endpoint asks of them::

    settings = ConnectionSettings(child_environment=inherited_environment(os.environ))
    upstreams = Upstreams(settings)
    unsubscribe = upstreams.add_listener(tell_clients_the_list_changed)
    await upstreams.apply(specs)            # again whenever the specs change

    upstreams.list_tools()                  # on /mcp: "files__read", "search__query", ...
    upstreams.list_tools("files")           # on /mcp/s/files: "read", ...
    await upstreams.call_tool(None, "files__read", {"path": "/x"}, meta=..., progress=...)
    await upstreams.call_tool("files", "read", {"path": "/x"})

    await upstreams.close()

Only READY servers' tools are listed; a call to a known tool of a server that is not
READY fails with :class:`~gateway.mcpfront.upstream_errors.UpstreamNotReady`. Exposed
names are looked up in a map built from the servers' tool lists, never parsed. Listeners
are told (synchronously, in the event loop) whenever what is listed changes: a server
became READY or stopped being, its tools changed, a spec was applied. Status listeners
(:meth:`Upstreams.add_status_listener`, the console's MCP view) are told of more: every
change of a server's state or last error and every tools fetch, even one that finds the
same tools, and every spec applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mcp.types as types

from gateway.mcpfront.connection import ConnectionSettings
from gateway.mcpfront.spec import UpstreamSpec
from gateway.mcpfront.tool_names import exposed_name
from gateway.mcpfront.upstream import Progress, State, Upstream, UpstreamStatus
from gateway.mcpfront.upstream_errors import UnknownTool

__all__ = ["Upstreams"]

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class Upstreams:
    """The gateway's upstream servers, kept to the specs given to :meth:`apply`.

    Args:
        settings: How every server is connected: timeouts, backoff, and what a stdio
            child inherits (the entry point passes ``child_environment=
            inherited_environment(os.environ)``).
        close_timeout_seconds: How long stopping one server may take before it is
            cancelled (see :meth:`Upstream.close`).
    """

    def __init__(
        self,
        settings: ConnectionSettings | None = None,
        *,
        close_timeout_seconds: float = 10.0,
    ) -> None:
        self._settings = settings or ConnectionSettings()
        self._close_timeout = close_timeout_seconds
        self._upstreams: dict[str, Upstream] = {}
        # exposed name -> (server, own name), over every enabled server's tools
        self._names: dict[str, tuple[str, str]] = {}
        # what is listed on /mcp: exposed name -> the tool under that name
        self._listed: dict[str, types.Tool] = {}
        self._listeners: list[Listener] = []
        self._status_listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._closed = False

    async def apply(self, specs: Iterable[UpstreamSpec]) -> None:
        """Make the running servers those of ``specs``: start new ones, stop removed ones,
        restart those whose transport or ``enabled`` changed, and hand other changes
        (tool filters, limits) to the running server without a reconnect.

        Raises:
            ValueError: Two specs have the same name.
            RuntimeError: After :meth:`close`.
        """
        wanted: dict[str, UpstreamSpec] = {}
        for spec in specs:
            if spec.name in wanted:
                raise ValueError(f"two upstream specs are named {spec.name!r}")
            wanted[spec.name] = spec
        async with self._lock:
            if self._closed:
                raise RuntimeError("the upstreams are closed")
            stopping: list[Upstream] = []
            for name, upstream in list(self._upstreams.items()):
                new = wanted.get(name)
                if new == upstream.spec:
                    continue
                if new is not None and upstream.spec.same_connection(new):
                    upstream.update(new)
                    continue
                stopping.append(self._upstreams.pop(name))
            self._rebuild()
            # Stopped before their successors start: a child may hold a port or a lock.
            await asyncio.gather(*(upstream.close() for upstream in stopping))
            for name, spec in wanted.items():
                if name not in self._upstreams:
                    upstream = Upstream(
                        spec,
                        on_change=self._on_change,
                        settings=self._settings,
                        close_timeout_seconds=self._close_timeout,
                    )
                    self._upstreams[name] = upstream
                    await upstream.start()
            self._rebuild()
        self._tell(self._status_listeners)

    async def close(self) -> None:
        """Stop every server (stdio children included). Safe to call twice."""
        async with self._lock:
            self._closed = True
            stopping = list(self._upstreams.values())
            self._upstreams.clear()
            self._rebuild()
        self._tell(self._status_listeners)
        await asyncio.gather(*(upstream.close() for upstream in stopping))

    # -- what there is ----------------------------------------------------------------

    def get(self, server: str) -> Upstream | None:
        """The server of that name, whatever its state."""
        return self._upstreams.get(server)

    def statuses(self) -> list[UpstreamStatus]:
        """Every server's snapshot, by name."""
        return [self._upstreams[name].status() for name in sorted(self._upstreams)]

    def list_tools(self, server: str | None = None) -> list[types.Tool]:
        """The tools to list, sorted by name: every READY server's under exposed names
        (``server`` ``None``, for ``/mcp``), or one READY server's under their own names
        (for ``/mcp/s/<server>``; empty when it is not READY or unknown)."""
        if server is None:
            return [self._listed[name] for name in sorted(self._listed)]
        upstream = self._upstreams.get(server)
        if upstream is None or upstream.state is not State.READY:
            return []
        return sorted(upstream.tools, key=lambda tool: tool.name)

    def find_tool(self, server: str | None, name: str) -> types.Tool | None:
        """The listed tool ``name`` (exposed when ``server`` is ``None``), e.g. for its
        input schema; ``None`` when nothing of that name is listed."""
        if server is None:
            return self._listed.get(name)
        return next((tool for tool in self.list_tools(server) if tool.name == name), None)

    def resolve(self, name: str) -> tuple[Upstream, str]:
        """The server and own name behind the exposed ``name``.

        Raises:
            UnknownTool: No enabled server has a tool of that exposed name.
        """
        found = self._names.get(name)
        upstream = self._upstreams.get(found[0]) if found else None
        if found is None or upstream is None:
            raise UnknownTool(f"no tool {name!r}", server="", tool=name)
        return upstream, found[1]

    async def call_tool(
        self,
        server: str | None,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Call a tool by its exposed name (``server`` ``None``) or by ``server`` and its
        own name; see :meth:`Upstream.call` for the rest.

        Raises:
            UpstreamError: see :meth:`Upstream.call`; :class:`UnknownTool` also for an
                unknown server.
        """
        if server is None:
            upstream, own = self.resolve(name)
        else:
            found = self._upstreams.get(server)
            if found is None:
                raise UnknownTool(f"no server {server!r}", server=server, tool=name)
            upstream, own = found, name
        return await upstream.call(
            own, arguments, meta=meta, progress=progress, timeout_seconds=timeout_seconds
        )

    # -- changes ----------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` whenever the listed tools change; returns the way to stop.

        Listeners run in the event loop, must not block and should not raise.
        """
        return _added(self._listeners, listener)

    def add_status_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` whenever a server's state, last error or tools may have
        changed (a tools fetch that found the same ones included) and after every
        :meth:`apply`; returns the way to stop. Bursts are the listener's to coalesce.

        Listeners run in the event loop, must not block and should not raise.
        """
        return _added(self._status_listeners, listener)

    def _on_change(self, upstream: Upstream) -> None:
        if self._upstreams.get(upstream.name) is upstream:
            self._rebuild()
            self._tell(self._status_listeners)

    def _rebuild(self) -> None:
        names: dict[str, tuple[str, str]] = {}
        listed: dict[str, types.Tool] = {}
        for server, upstream in self._upstreams.items():
            for tool in upstream.tools:
                exposed = exposed_name(server, tool.name)
                names[exposed] = (server, tool.name)
                if upstream.state is State.READY:
                    listed[exposed] = tool.model_copy(update={"name": exposed})
        self._names = names
        if listed == self._listed:
            return
        self._listed = listed
        self._tell(self._listeners)

    @staticmethod
    def _tell(listeners: list[Listener]) -> None:
        for listener in list(listeners):
            try:
                listener()
            except Exception:
                log.exception("a listener of the upstreams failed")


def _added(listeners: list[Listener], listener: Listener) -> Callable[[], None]:
    listeners.append(listener)

    def remove() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return remove
