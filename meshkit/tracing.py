"""W3C trace context (``traceparent``, ``tracestate``) carried from a request to its events.

Whatever handles a request sets the current context (:func:`use_trace`): the gateway
for an HTTP request (the caller's ``traceparent`` or a new trace), a plugin's gRPC server
for each call (:mod:`meshkit.interceptors`, from the ``traceparent`` metadata). The
outbox stores it with each event and the relay sends it in NATS headers; the subscriber
makes it current again while a handler runs, so the events a handler publishes continue
the same trace. Without a current context, an event starts a new trace of its own.
JSON log lines written meanwhile carry its ``trace_id`` and ``span_id``
(:mod:`meshkit.logging`).

Each hop that handles the context (the gateway, a plugin's call) continues it as a span of
its own: same trace id, a new span id (:meth:`TraceContext.child`), so the span id in a log
line tells the hops apart. This small implementation of the W3C format is the mesh's one
trace system, and all it needs with traces off: the contextvar and the header, and the
gateway's request path stays cheap. With OpenTelemetry on (:mod:`meshkit.spans`) the hops
start exported spans instead of calling :meth:`~TraceContext.child`, and each span's
context, as a :class:`TraceContext`, is the one made current and passed on: the same ids
in the logs, the headers and the exported spans.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TraceContext",
    "continue_trace",
    "current_trace",
    "new_trace",
    "use_trace",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# version-traceid-parentid-flags; all-zero ids are invalid (W3C trace context §3.2).
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class TraceContext:
    """A ``traceparent`` and, when there is one, a ``tracestate``."""

    traceparent: str
    tracestate: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | None) -> TraceContext | None:
        """The context in ``headers``, or ``None`` when absent or malformed."""
        if not headers:
            return None
        parent = headers.get(TRACEPARENT, "").strip().lower()
        if not _TRACEPARENT.match(parent):
            return None
        return cls(parent, headers.get(TRACESTATE) or None)

    @property
    def trace_id(self) -> str:
        """The 32 hex digits naming the whole trace."""
        return self.traceparent[3:35]

    @property
    def span_id(self) -> str:
        """The 16 hex digits naming the span that sent this context."""
        return self.traceparent[36:52]

    def child(self) -> TraceContext:
        """The context of a new span in the same trace, with this one as its parent."""
        parent = self.traceparent
        return TraceContext(f"{parent[:36]}{_span_id()}{parent[52:]}", self.tracestate)

    def headers(self) -> dict[str, str]:
        """The context as headers."""
        result = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            result[TRACESTATE] = self.tracestate
        return result


def new_trace() -> TraceContext:
    """A new root context: a random trace id and span id, not sampled."""
    return TraceContext(f"00-{os.urandom(16).hex()}-{_span_id()}-00")


def _span_id() -> str:
    # os.urandom, not the random module: its global generator is the application's
    # (tests seed it, Hypothesis watches it), and a span id must not depend on that.
    return os.urandom(8).hex()


def continue_trace(traceparent: str | None, tracestate: str | None = None) -> TraceContext:
    """A new span continuing the caller's ``traceparent``, or a new trace when it is
    absent or malformed."""
    if traceparent is not None:
        parent = traceparent.strip().lower()
        if _TRACEPARENT.match(parent):
            return TraceContext(parent, tracestate or None).child()
    return new_trace()


_current: ContextVar[TraceContext | None] = ContextVar("plugmesh_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the code running now, if any."""
    return _current.get()


def use_trace(trace: TraceContext | None) -> AbstractContextManager[None]:
    """Make ``trace`` current inside the ``with`` block.

    The block must end in the context it began in: around an async generator's step,
    not around a ``yield``.
    """
    return _Using(trace)


class _Using:
    # A class rather than @contextmanager: it runs around every call a server handles,
    # and a generator-based manager costs about three times as much.
    __slots__ = ("_token", "_trace")
    _token: Token[TraceContext | None]

    def __init__(self, trace: TraceContext | None) -> None:
        self._trace = trace

    def __enter__(self) -> None:
        self._token = _current.set(self._trace)

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
