"""Logs are JSON objects, one per line, carrying the process and extra fields."""

from __future__ import annotations

import json
import logging
import sys

from meshkit.logging import JsonFormatter
from meshkit.tracing import TraceContext, use_trace


def test_log_record_becomes_one_json_object_with_extra_fields() -> None:
    record = logging.LogRecord(
        "meshkit.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    record.service = "users"
    entry = json.loads(JsonFormatter("users").format(record))
    assert entry["level"] == "warning"
    assert entry["process"] == "users"
    assert entry["message"] == "hello x"
    assert entry["service"] == "users"
    assert entry["time"].endswith("Z")


def test_exception_is_carried_in_the_entry() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord(
            "meshkit.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = json.loads(JsonFormatter("users").format(record))
    assert "ValueError: broken" in entry["exception"]


def test_a_line_written_inside_a_trace_carries_its_trace_and_span_ids() -> None:
    trace = TraceContext("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    record = logging.LogRecord("meshkit.test", logging.INFO, __file__, 1, "inside", (), None)
    with use_trace(trace):
        inside = json.loads(JsonFormatter("users").format(record))
    outside = json.loads(JsonFormatter("users").format(record))

    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == "b7ad6b7169203331"
    assert "trace_id" not in outside
    assert "span_id" not in outside
