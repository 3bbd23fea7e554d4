"""One upstream MCP server: its connection, its tools, and calls to them.

An :class:`Upstream` owns one ``mcp.Client`` in one long-running task, which connects,
fetches the tools (every page), follows the server's ``tools/list_changed``, notices
when the connection or the child process dies and connects again after a backoff. Calls
from any task go through that client::

    upstream = Upstream(spec, on_change=lambda u: ...)
    await upstream.start()
    upstream.state, upstream.tools, upstream.skipped, upstream.last_error
    result = await upstream.call("echo", {"text": "hi"}, meta={"traceparent": tp},
                                 progress=report)
    await upstream.close()

States::

    DISABLED                      the spec says enabled=False: never connected
    CONNECTING ──► READY          connected, tools fetched
        ▲   │        │
        │   ▼        ▼
        └─ FAILING ◄─┘            connect failed or connection lost; retried with backoff

Everything the owner task does with the SDK's client (its task groups, its child
process) starts and ends inside that task, so a dead upstream ends that task's
connection, not some other task: callers see an :class:`~gateway.mcpfront.
upstream_errors.UpstreamError`.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import mcp.types as types
from mcp import MCPError
from mcp.client.session import ClientSession
from mcp.client.stdio import FORCE_KILL_TIMEOUT, PROCESS_TERMINATION_TIMEOUT
from mcp.shared.inbound import x_mcp_header_map
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import TypeAdapter, ValidationError

from gateway.mcpfront.connection import ConnectionSettings, describe_failure, serve_connection
from gateway.mcpfront.http_calls import HeaderMap, HttpCalls
from gateway.mcpfront.spec import HttpTransport, StdioTransport, UpstreamSpec
from gateway.mcpfront.tool_names import SkippedTool, served_tools
from gateway.mcpfront.transports import Link
from gateway.mcpfront.upstream_errors import (
    UnknownTool,
    UpstreamDied,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
)

__all__ = ["Progress", "State", "Upstream", "UpstreamStatus", "forwarded_meta"]

log = logging.getLogger(__name__)

# Keys of ``_meta`` that belong to one hop's protocol envelope (the SDK stamps its own
# upstream) or to one hop's progress token (the SDK mints its own when asked to report).
_ENVELOPE_PREFIX = "io.modelcontextprotocol/"
_HOP_KEYS = frozenset({"progressToken", "progress_token"})
_RAW = TypeAdapter(dict[str, Any])
# How long the SDK's stop of a child may take: stdin closed, a grace, SIGTERM to its
# process group, SIGKILL; plus a few seconds for its flush, its reaping and our stderr.
_CHILD_STOP_SECONDS = PROCESS_TERMINATION_TIMEOUT + FORCE_KILL_TIMEOUT + 4.0

#: Told of each progress report of a call: ``(progress, total, message)``.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


class State(enum.Enum):
    """Where an upstream's connection is."""

    CONNECTING = "connecting"
    READY = "ready"
    FAILING = "failing"
    DISABLED = "disabled"
    #: After :meth:`Upstream.close`; a closed upstream is no longer anyone's to show.
    CLOSED = "closed"


@dataclass(frozen=True)
class UpstreamStatus:
    """A snapshot of an upstream, for its view in the admin API.

    Attributes:
        name: The server's name.
        state: Its state.
        last_error: Why it last failed ("" if it never did); kept once it is ready again.
        tools: The tools it serves (its own names).
        skipped: The tools it lists that are left out for their names.
        tools_fetch_time: When its tools were last fetched; ``None`` before the first time.
        protocol_version: What it speaks on the current connection ("" when none).
    """

    name: str
    state: State
    last_error: str
    tools: tuple[types.Tool, ...]
    skipped: tuple[SkippedTool, ...]
    tools_fetch_time: datetime | None
    protocol_version: str


def forwarded_meta(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A caller's ``_meta`` as it goes upstream: without the hop's envelope and progress
    token (the SDK sets the upstream's own), everything else (``traceparent``, vendor
    keys) as it came."""
    if not meta:
        return None
    kept = {
        key: value
        for key, value in meta.items()
        if key not in _HOP_KEYS and not key.startswith(_ENVELOPE_PREFIX)
    }
    return kept or None


def _passed_on(raw: dict[str, Any]) -> dict[str, Any]:
    """An upstream's ``tools/call`` result as the gateway answers it: whole, less the
    upstream's envelope stamps in ``_meta`` (the gateway stamps its own), and with the
    ``resultType`` a legacy upstream leaves out (modern callers need it)."""
    meta = raw.get("_meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if not k.startswith(_ENVELOPE_PREFIX)}
        if kept:
            raw["_meta"] = kept
        else:
            del raw["_meta"]
    raw.setdefault("resultType", "complete")
    return raw


@dataclass
class _Connection:
    session: ClientSession
    link: Link
    #: Calls without the session, on a stateless Streamable HTTP connection.
    http_calls: HttpCalls | None = None


class Upstream:
    """One upstream server, connected (and reconnected) by its own task.

    Args:
        spec: The server.
        on_change: Called (in the event loop, must not raise) after the state or the
            tools change.
        settings: Timeouts, backoff, what a child inherits.
        close_timeout_seconds: How long :meth:`close` lets the connection end cleanly
            before it cancels; a child's stop (stdin closed, then SIGTERM, then SIGKILL)
            gets at least the few seconds it takes.
    """

    def __init__(
        self,
        spec: UpstreamSpec,
        *,
        on_change: Callable[[Upstream], None] | None = None,
        settings: ConnectionSettings | None = None,
        close_timeout_seconds: float = 10.0,
    ) -> None:
        self._spec = spec
        self._on_change = on_change
        self._settings = settings or ConnectionSettings()
        self._close_timeout = close_timeout_seconds
        self._state = State.CONNECTING if spec.enabled else State.DISABLED
        self._last_error = ""
        self._quiet = False
        self._listed: tuple[types.Tool, ...] = ()
        self._tools: tuple[types.Tool, ...] = ()
        self._served: dict[str, types.Tool] = {}
        self._header_maps: dict[str, HeaderMap] = {}
        self._skipped: tuple[SkippedTool, ...] = ()
        self._fetch_time: datetime | None = None
        self._protocol_version = ""
        self._slots = anyio.Semaphore(spec.max_concurrent_calls)
        self._connection: _Connection | None = None
        self._scope = anyio.CancelScope()
        self._retry_now = anyio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- what it is -------------------------------------------------------------------

    @property
    def spec(self) -> UpstreamSpec:
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def state(self) -> State:
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def tools(self) -> tuple[types.Tool, ...]:
        """The tools it serves (after include/exclude and the name checks), as last
        fetched; offered to callers only while :attr:`state` is READY."""
        return self._tools

    @property
    def skipped(self) -> tuple[SkippedTool, ...]:
        return self._skipped

    @property
    def tools_fetch_time(self) -> datetime | None:
        return self._fetch_time

    def status(self) -> UpstreamStatus:
        """A snapshot for a view."""
        return UpstreamStatus(
            name=self.name,
            state=self._state,
            last_error=self._last_error,
            tools=self._tools,
            skipped=self._skipped,
            tools_fetch_time=self._fetch_time,
            protocol_version=self._protocol_version,
        )

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting (in the background); a disabled server stays DISABLED.

        Safe to call twice.
        """
        if self._task is not None or self._closed or not self._spec.enabled:
            return
        self._task = asyncio.create_task(self._own(), name=f"mcp upstream {self.name}")

    async def close(self) -> None:
        """End the connection (a child process is stopped) and the owner task.

        Safe to call twice, and concurrently.
        """
        self._closed = True
        self._scope.cancel()
        task = self._task
        timeout = self._close_timeout
        if isinstance(self._spec.transport, StdioTransport):
            # Cancelling the task cuts the SDK's stop of the child short: the child lives
            # on, and the transport waits for its stdout to end, as long as it lives.
            timeout = max(timeout, _CHILD_STOP_SECONDS)
        if task is not None:
            _, pending = await asyncio.wait({task}, timeout=timeout)
            if pending:
                log.warning(
                    "mcp upstream %s did not stop within %s s; cancelling it",
                    self.name,
                    timeout,
                    extra={"mcp_server": self.name},
                )
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.error("mcp upstream %s failed", self.name, exc_info=task.exception())
        if self._state is not State.CLOSED:
            self._set_state(State.CLOSED)

    def update(self, spec: UpstreamSpec) -> None:
        """Take a spec that keeps the connection (:meth:`UpstreamSpec.same_connection`):
        new filters apply to the tools at once, new limits to the next calls."""
        if not self._spec.same_connection(spec):
            raise ValueError(f"{spec.name}: a spec with another transport needs a new Upstream")
        old, self._spec = self._spec, spec
        if spec.max_concurrent_calls != old.max_concurrent_calls:
            self._slots = anyio.Semaphore(spec.max_concurrent_calls)
        if (spec.include_tools, spec.exclude_tools) != (old.include_tools, old.exclude_tools):
            self._take_tools(self._listed, fetched=False)

    def refresh(self) -> None:
        """The admin API's refresh: fetch the tools again now when READY; connect again
        now, without waiting out the backoff, when FAILING."""
        connection = self._connection
        if connection is not None:
            connection.link.tools_changed.set()
        self._retry_now.set()

    # -- calls ------------------------------------------------------------------------

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Call the tool ``name`` (its own name) and return the server's result, whole.

        Args:
            name: The tool's own name; it must be one the server serves.
            arguments: Its arguments.
            meta: The caller's ``_meta`` (e.g. ``traceparent``); see :func:`forwarded_meta`.
            progress: Called with each progress report of the server.
            timeout_seconds: The caller's own deadline; the spec's call timeout applies
                when it is shorter. Waiting for a free slot counts.

        Returns:
            The ``tools/call`` result as a JSON object: ``content``, ``isError``,
            ``structuredContent``, ``_meta`` and any other field as the server sent them
            (see :func:`_passed_on` for the two things changed).

        Raises:
            UnknownTool: The server serves no tool ``name``.
            UpstreamNotReady: The server is not connected.
            UpstreamTimeout: The deadline passed; the upstream request is cancelled.
            UpstreamDied: The connection ended during the call.
            UpstreamProtocolError: The server answered what is not a ``tools/call`` result.
            UpstreamRejected: The server answered with a JSON-RPC error.
        """
        connection = self._connection
        if connection is None or self._state is not State.READY:
            raise UpstreamNotReady(
                f"{self.name} is {self._state.value}"
                + (f": {self._last_error}" if self._last_error else ""),
                server=self.name,
                tool=name,
                state=self._state.value,
                last_error=self._last_error,
            )
        if name not in self._served:
            raise UnknownTool(f"{self.name} serves no tool {name!r}", server=self.name, tool=name)
        timeout = self._spec.call_timeout_seconds
        if timeout_seconds is not None:
            timeout = min(timeout, timeout_seconds)
        raw: dict[str, Any] | None = None
        with anyio.move_on_after(timeout):
            async with self._slots:
                if connection.http_calls is not None:
                    raw = await self._post(connection, name, arguments, meta, progress)
                else:
                    raw = await self._send(connection, name, arguments, meta, progress)
        if raw is None:
            raise UpstreamTimeout(
                f"{self.name}: {name} did not finish within {timeout} s",
                server=self.name,
                tool=name,
                timeout_seconds=timeout,
            )
        return _passed_on(raw)

    async def _post(
        self,
        connection: _Connection,
        name: str,
        arguments: dict[str, Any] | None,
        meta: Mapping[str, Any] | None,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """A call on a stateless HTTP connection (:mod:`~gateway.mcpfront.http_calls`)."""
        assert connection.http_calls is not None
        try:
            return await connection.http_calls.call(
                name,
                arguments,
                meta=forwarded_meta(meta),
                progress=progress,
                header_map=self._header_maps.get(name, {}),
            )
        except UpstreamDied:
            connection.link.suspect.set()
            raise

    async def _send(
        self,
        connection: _Connection,
        name: str,
        arguments: dict[str, Any] | None,
        meta: Mapping[str, Any] | None,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """A call through the SDK's session; the one place where its errors become ours."""
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if (forwarded := forwarded_meta(meta)) is not None:
            params["_meta"] = forwarded
        request = types.CallToolRequest(params=types.CallToolRequestParams.model_validate(params))
        forward = None
        if progress is not None:
            report = progress

            async def forward(progress: float, total: float | None, message: str | None) -> None:
                await report(progress, total, message)

        try:
            # A TypeAdapter of a dict gets the result as sent, without the client's
            # output-schema check nor its re-serialisation (the SDK accepts any
            # TypeAdapter; its annotation names only models).
            return await connection.session.send_request(
                request,
                _RAW,  # type: ignore[type-var]
                progress_callback=forward,
            )
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                connection.link.suspect.set()
                raise UpstreamDied(
                    f"{self.name}: the connection ended during {name}: {exc.error.message}",
                    server=self.name,
                    tool=name,
                ) from exc
            raise UpstreamRejected(
                server=self.name,
                tool=name,
                code=exc.code,
                error_message=exc.error.message,
                data=exc.error.data,
            ) from exc
        except ValidationError as exc:
            raise UpstreamProtocolError(
                f"{self.name}: {name} answered what is not a tools/call result: "
                f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}",
                server=self.name,
                tool=name,
            ) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            connection.link.suspect.set()
            raise UpstreamDied(
                f"{self.name}: the connection ended during {name}", server=self.name, tool=name
            ) from exc

    # -- the owner task ---------------------------------------------------------------

    async def _own(self) -> None:
        failures = 0
        with self._scope:
            while True:
                self._set_state(State.CONNECTING)
                link = Link(self.name)
                try:
                    await serve_connection(
                        self._spec,
                        link,
                        self._settings,
                        on_ready=functools.partial(self._ready, link),
                        on_tools=lambda tools: self._take_tools(tools, fetched=True),
                    )
                    reason = link.lost_reason
                except Exception as exc:
                    reason = describe_failure(exc)
                finally:
                    self._connection = None
                if context := link.context():
                    reason = f"{reason}; {context}"
                failures = 1 if self._state is State.READY else failures + 1
                self._set_state(State.FAILING, error=reason)
                self._retry_now = anyio.Event()
                with anyio.move_on_after(self._settings.backoff.delay(failures)):
                    await self._retry_now.wait()

    def _ready(
        self, link: Link, session: ClientSession, version: str, tools: list[types.Tool]
    ) -> None:
        self._protocol_version = version
        http_calls = None
        transport = self._spec.transport
        if (
            link.http is not None
            and isinstance(transport, HttpTransport)
            and version in MODERN_PROTOCOL_VERSIONS
        ):
            http_calls = HttpCalls(
                self.name,
                link.http,
                transport.url,
                protocol_version=version,
                client_info=self._settings.client_info.model_dump(mode="json", exclude_none=True),
            )
        self._connection = _Connection(session, link, http_calls)
        self._take_tools(tools, fetched=True)
        self._set_state(State.READY)

    # -- state ------------------------------------------------------------------------

    def _take_tools(
        self, listed: list[types.Tool] | tuple[types.Tool, ...], *, fetched: bool
    ) -> None:
        self._listed = tuple(listed)
        tools, skipped = served_tools(self._spec, self._listed)
        if skipped != self._skipped:
            for tool in skipped:
                log.warning(
                    "mcp upstream %s: tool %r left out: %s",
                    self.name,
                    tool.name,
                    tool.reason,
                    extra={"mcp_server": self.name},
                )
        self._tools, self._skipped = tools, skipped
        self._served = {tool.name: tool for tool in tools}
        self._header_maps = {tool.name: x_mcp_header_map(tool.input_schema) for tool in tools}
        if fetched:
            self._fetch_time = datetime.now(UTC)
        self._changed()

    def _set_state(self, state: State, *, error: str = "") -> None:
        if state is State.READY:
            log.info(
                "mcp upstream %s ready: %d tools, protocol %s",
                self.name,
                len(self._tools),
                self._protocol_version,
                extra={"mcp_server": self.name},
            )
            self._quiet = False
        elif state is State.FAILING:
            # One warning per new reason: a server that stays down is not news each retry.
            level = logging.DEBUG if self._quiet and error == self._last_error else logging.WARNING
            log.log(
                level,
                "mcp upstream %s failing: %s",
                self.name,
                error,
                extra={"mcp_server": self.name},
            )
            self._quiet = True
            self._last_error = error
            self._protocol_version = ""
        self._state = state
        self._changed()

    def _changed(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(self)
        except Exception:
            log.exception("on_change of mcp upstream %s failed", self.name)
