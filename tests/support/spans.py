"""A span recorder that records, for tests of where spans start and end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshkit.spans import Attributes, SpanKind
from meshkit.tracing import TraceContext, new_trace

__all__ = ["RecordedSpan", "Recorder"]


@dataclass
class RecordedSpan:
    """A span as it was started and ended."""

    name: str
    kind: SpanKind
    parent: TraceContext | None
    remote: bool
    attributes: dict[str, Any]
    trace: TraceContext
    error: str | None = None
    ended: bool = False

    def end(
        self,
        *,
        error: str | None = None,
        attributes: Attributes | None = None,
        name: str | None = None,
    ) -> None:
        self.ended, self.error = True, error
        self.attributes.update(attributes or {})
        self.name = name or self.name


class Recorder:
    """A :class:`meshkit.spans.SpanRecorder` keeping every span it starts."""

    def __init__(self) -> None:
        self.started: list[RecordedSpan] = []

    def start(
        self,
        name: str,
        kind: SpanKind,
        parent: TraceContext | None,
        *,
        remote: bool = False,
        attributes: Attributes | None = None,
    ) -> RecordedSpan:
        trace = parent.child() if parent is not None else new_trace()
        span = RecordedSpan(name, kind, parent, remote, dict(attributes or {}), trace)
        self.started.append(span)
        return span

    async def close(self) -> None:
        pass
