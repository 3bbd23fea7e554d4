"""Spans of the mesh's requests, exported to OpenTelemetry when it is turned on.

plugmesh keeps one trace system: the W3C context of :mod:`meshkit.tracing`. Where a hop
of a request begins (an HTTP request at the gateway, a gRPC call on either side, an event
published or handled, an MCP tool call), a process with traces on starts an
OpenTelemetry span as the child of the context it has, and the span's own context, as a
:class:`~meshkit.tracing.TraceContext`, is what the hop makes current, logs and passes
on; so the ids in log lines, in ``traceparent`` headers and in the exported spans are
the same ids. With traces off (the default) no span is started, nothing of OpenTelemetry
is imported, and each hop derives its context as it always did.

::

    spans = open_recorder(config.otel, "users")        # None when traces are off
    if spans is not None:
        span = spans.start("plugmesh.users.v1.UserService/GetUser", SpanKind.SERVER, caller)
        with use_trace(span.trace):
            ...
        span.end(error=None)
    await spans.close()

A process builds one recorder and closes it last, after its servers stopped, which
exports what is left. The recorder has no global state: several processes of the mesh
may run in one interpreter (the tests) each with a service name of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Protocol

from meshkit.otel_settings import OtelSettings
from meshkit.tracing import TraceContext

__all__ = ["Attributes", "OpenSpan", "SpanKind", "SpanRecorder", "open_recorder"]

#: Span attributes, by their OpenTelemetry semantic-convention names.
Attributes = Mapping[str, str | int | float | bool]


class SpanKind(enum.Enum):
    """What side of an exchange a span is (OpenTelemetry's kinds)."""

    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class OpenSpan(Protocol):
    """A span that has started and not yet ended."""

    @property
    def trace(self) -> TraceContext:
        """The span's own context: make it current, log it, pass it on."""
        ...

    def end(
        self,
        *,
        error: str | None = None,
        attributes: Attributes | None = None,
        name: str | None = None,
    ) -> None:
        """End the span now; ``error`` describes a failure (the span's status is then
        ERROR), ``name`` renames it (what it was is known at its end). Only the first
        call counts."""
        ...


class SpanRecorder(Protocol):
    """Starts spans and exports those that end."""

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: TraceContext | None,
        *,
        remote: bool = False,
        attributes: Attributes | None = None,
    ) -> OpenSpan:
        """Start a span, the child of ``parent`` (``remote`` when it came from another
        process), or the root of a new trace when ``parent`` is ``None``. Whether it is
        sampled is the sampler's decision, carried in the span's context."""
        ...

    async def close(self) -> None:
        """Export the spans that ended and stop. Safe to call twice."""
        ...


def open_recorder(settings: OtelSettings, service: str) -> SpanRecorder | None:
    """The recorder of the process named ``service``; ``None`` when traces are off.

    Only here is OpenTelemetry imported, and only when ``settings.enabled``.
    """
    if not settings.enabled:
        return None
    # Here, not at the top: the module imports OpenTelemetry, which is not installed
    # without the otel extra and costs the processes that do not use it.
    from meshkit._otlp import OtlpRecorder

    return OtlpRecorder(settings, service)
