"""W3C trace context (``traceparent``, ``tracestate``) carried from a request to its events.

Whatever handles a request sets the current context (:func:`use_trace`); the outbox
stores it with each event and the relay sends it in NATS headers; the subscriber makes
it current again while a handler runs, so the events a handler publishes continue the
same trace. Without a current context, an event starts a new trace of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TraceContext",
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

    def headers(self) -> dict[str, str]:
        """The context as headers."""
        result = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            result[TRACESTATE] = self.tracestate
        return result


def new_trace() -> TraceContext:
    """A new root context: a random trace id and span id, not sampled."""
    return TraceContext(f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-00")


_current: ContextVar[TraceContext | None] = ContextVar("plugmesh_trace", default=None)


def current_trace() -> TraceContext | None:
    """The trace context of the code running now, if any."""
    return _current.get()


@contextlib.contextmanager
def use_trace(trace: TraceContext | None) -> Iterator[None]:
    """Make ``trace`` current inside the block."""
    token = _current.set(trace)
    try:
        yield
    finally:
        _current.reset(token)
