"""The gRPC series read as those of the widely used gRPC interceptors for Prometheus do."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import CollectorRegistry

from meshkit.metrics import RpcMetrics

#: How go-grpc-prometheus (Go's ``codes.Code.String()``) spells each status code.
GO_SPELLING = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def test_every_status_code_has_its_spelling() -> None:
    assert set(GO_SPELLING) == set(grpc.StatusCode)


@pytest.mark.parametrize(
    ("code", "label"), list(GO_SPELLING.items()), ids=[code.name for code in GO_SPELLING]
)
def test_a_call_is_counted_under_the_code_label_dashboards_match(
    code: grpc.StatusCode, label: str
) -> None:
    registry = CollectorRegistry()
    series = RpcMetrics(registry).series("/pkg.Things/GetThing", "unary")

    series.start()
    series.observe(code.name, 0.002)

    labels = {"grpc_type": "unary", "grpc_service": "pkg.Things", "grpc_method": "GetThing"}
    assert registry.get_sample_value("grpc_server_started_total", labels) == 1
    assert (
        registry.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": label}) == 1
    )
    assert registry.get_sample_value("grpc_server_handling_seconds_sum", labels) == 0.002


def test_methods_a_server_does_not_have_share_one_series_per_type() -> None:
    registry = CollectorRegistry()
    metrics = RpcMetrics(registry, known=lambda method: method == "/pkg.Things/GetThing")

    for made_up in ("/a.B/C", "/d.E/F"):
        metrics.series(made_up, "bidi_stream").observe("UNIMPLEMENTED", 0.001)
    metrics.series("/pkg.Things/GetThing", "unary").observe("OK", 0.001)

    unknown = {"grpc_type": "bidi_stream", "grpc_service": "unknown", "grpc_method": "unknown"}
    handled = {**unknown, "grpc_code": "Unimplemented"}
    assert registry.get_sample_value("grpc_server_handled_total", handled) == 2
    names = {
        sample.labels.get("grpc_service")
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
    }
    assert names == {"unknown", "pkg.Things"}
