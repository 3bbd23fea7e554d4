"""An HTTP request's server span: its parent, its name and route, and the request's trace
it becomes (with a recorder that only records)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.http.headers import scope_trace
from gateway.http.spans import end_request_span, start_request_span
from meshkit.spans import SpanKind
from meshkit.tracing import TraceContext
from tests.support.spans import RecordedSpan, Recorder

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def scope(path: str, method: str = "GET", traceparent: str = "") -> dict[str, Any]:
    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    return {"type": "http", "method": method, "path": path, "headers": headers}


def test_the_span_continues_the_callers_traceparent_and_becomes_the_requests_trace() -> None:
    recorder = Recorder()
    request = scope("/v1/users", traceparent=CALLER)

    span = start_request_span(recorder, request)

    assert span is recorder.started[0]
    assert (span.kind, span.remote) == (SpanKind.SERVER, True)
    assert span.parent == TraceContext(CALLER)
    # The transcoder puts the span's context in the metadata, not the caller's.
    assert scope_trace(request) == (span.trace, False)


def test_a_request_without_traceparent_is_the_root_of_a_trace() -> None:
    recorder = Recorder()

    span = start_request_span(recorder, scope("/v1/users"))

    assert isinstance(span, RecordedSpan)
    assert span.parent is None


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_scrapes_are_no_spans(path: str) -> None:
    recorder = Recorder()

    assert start_request_span(recorder, scope(path)) is None
    assert recorder.started == []


@pytest.mark.parametrize(
    ("method", "label", "status", "name", "route", "error"),
    [
        pytest.param("GET", "GET /v1/users/{user_id}", 200, "GET /v1/users/{user_id}",
                     "/v1/users/{user_id}", None, id="route"),
        pytest.param("HEAD", "GET /v1/users", 200, "HEAD /v1/users", "/v1/users", None,
                     id="head-on-a-get-route"),
        pytest.param("POST", "/mcp", 200, "POST /mcp", "/mcp", None, id="mcp"),
        pytest.param("GET", "unmatched", 404, "GET", None, None, id="unmatched"),
        pytest.param("POST", "POST /v1/users", 503, "POST /v1/users", "/v1/users", "503",
                     id="server-error"),
    ],
)  # fmt: skip
def test_the_span_is_named_after_its_route_and_fails_on_5xx(
    method: str, label: str, status: int, name: str, route: str | None, error: str | None
) -> None:
    span = start_request_span(Recorder(), scope("/anything", method))
    assert isinstance(span, RecordedSpan)

    end_request_span(span, method, label, status)

    assert (span.ended, span.name, span.error) == (True, name, error)
    assert span.attributes.get("http.route") == route
    assert span.attributes["http.response.status_code"] == status
