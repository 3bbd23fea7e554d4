"""The OpenTelemetry SDK behind :mod:`meshkit.spans`: a tracer of the process's own,
spans exported in batches over OTLP/gRPC. The only module that imports OpenTelemetry.

No global tracer provider is set: the MCP SDK's own spans (it calls the OpenTelemetry
API) stay no-ops, so the mesh has one trace system, its own, and no second span per
MCP request with ids of its own.
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace as api
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from meshkit.otel_settings import OtelSettings
from meshkit.spans import Attributes, SpanKind
from meshkit.tracing import TraceContext
from meshkit.version import package_version

__all__ = ["OtlpRecorder"]

_KINDS = {
    SpanKind.INTERNAL: api.SpanKind.INTERNAL,
    SpanKind.SERVER: api.SpanKind.SERVER,
    SpanKind.CLIENT: api.SpanKind.CLIENT,
    SpanKind.PRODUCER: api.SpanKind.PRODUCER,
    SpanKind.CONSUMER: api.SpanKind.CONSUMER,
}


class OtlpRecorder:
    """A :class:`meshkit.spans.SpanRecorder` exporting over OTLP/gRPC.

    Args:
        settings: Where to export, which sampler.
        service: The process's name, the spans' ``service.name`` unless the settings
            name one.
    """

    def __init__(self, settings: OtelSettings, service: str) -> None:
        version = package_version()
        resource = Resource.create(
            {
                **settings.resource_attributes,
                "service.name": settings.service_name or service,
                "service.namespace": "plugmesh",
                "service.version": version,
            }
        )
        self._provider = TracerProvider(
            resource=resource, sampler=_sampler(settings), shutdown_on_exit=False
        )
        exporter = OTLPSpanExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=dict(settings.headers),
            timeout=settings.timeout_millis / 1000,
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=settings.schedule_delay_millis)
        )
        self._tracer = self._provider.get_tracer("plugmesh", version)
        self._closed = False

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: TraceContext | None,
        *,
        remote: bool = False,
        attributes: Attributes | None = None,
    ) -> _Span:
        """See :meth:`meshkit.spans.SpanRecorder.start`."""
        # An empty context for a root, never the ambient one: the OpenTelemetry context
        # is not the mesh's.
        context = Context() if parent is None else _context_of(parent, remote)
        span = self._tracer.start_span(
            name, context=context, kind=_KINDS[kind], attributes=attributes
        )
        ids = span.get_span_context()
        traceparent = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"
        return _Span(span, TraceContext(traceparent, parent.tracestate if parent else None))

    async def close(self) -> None:
        """See :meth:`meshkit.spans.SpanRecorder.close`."""
        if self._closed:
            return
        self._closed = True
        # Exporting what is left blocks (at most the export timeout): not on the loop.
        await asyncio.to_thread(self._provider.shutdown)


class _Span:
    __slots__ = ("_span", "trace")

    def __init__(self, span: api.Span, trace: TraceContext) -> None:
        self._span = span
        self.trace = trace

    def end(
        self,
        *,
        error: str | None = None,
        attributes: Attributes | None = None,
        name: str | None = None,
    ) -> None:
        if name is not None:
            self._span.update_name(name)
        if attributes:
            self._span.set_attributes(dict(attributes))
        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()


def _context_of(parent: TraceContext, remote: bool) -> Context:
    state = api.TraceState.from_header([parent.tracestate]) if parent.tracestate else None
    span_context = api.SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=remote,
        trace_flags=api.TraceFlags(int(parent.traceparent[53:55], 16)),
        trace_state=state,
    )
    return api.set_span_in_context(api.NonRecordingSpan(span_context))


def _sampler(settings: OtelSettings) -> sampling.Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` names (validated when it was read)."""
    name = settings.sampler
    root: sampling.Sampler = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(settings.sampler_ratio),
    }[name.removeprefix("parentbased_")]
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root
