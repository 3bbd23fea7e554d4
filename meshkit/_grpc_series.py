"""The series of the gRPC calls a server answers, named and labelled as the widely used
gRPC interceptors for Prometheus (go-grpc-prometheus and its ports to other languages)
name them, so that the dashboards and alerts written for those read plugmesh's too.

| name | labels | meaning |
|---|---|---|
| ``grpc_server_started_total`` | type, service, method | calls started |
| ``grpc_server_handled_total`` | type, service, method, code | calls answered |
| ``grpc_server_handling_seconds`` | type, service, method | histogram of their duration |

Each label name has the prefix ``grpc_``.

``grpc_type`` is ``unary``, ``client_stream``, ``server_stream`` or ``bidi_stream``;
``grpc_code`` is spelled as those interceptors spell it (``OK``, ``NotFound``,
``Canceled``: Go's names, which the usual alert rules match), not as ``grpc.StatusCode``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["LATENCY_BUCKETS", "RpcMetrics", "RpcSeries", "grpc_type"]

#: Seconds; from a millisecond (an in-process call) to half a minute (a default deadline).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

_LABELS = ("grpc_type", "grpc_service", "grpc_method")

#: ``grpc.StatusCode`` names as the interceptors' label spells them. A name not here (none
#: today) is kept as it is.
_CODE_LABELS = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}

_TYPES = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The ``grpc_type`` label of a method of that cardinality."""
    return _TYPES[bool(request_streaming), bool(response_streaming)]


class _Families:
    """The three metric families, in one registry."""

    __slots__ = ("handled", "latency", "started")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            _LABELS,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*_LABELS, "grpc_code"),
            registry=registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time from a gRPC call's start to its status (a stream: its whole life).",
            _LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class RpcSeries:
    """The series of one method: calls started, answered per status code, and latency."""

    __slots__ = ("_codes", "_families", "_labels", "_latency", "_started")

    def __init__(self, families: _Families, kind: str, service: str, method: str) -> None:
        self._families = families
        self._labels = (kind, service, method)
        # labels() validates and locks: once per series, not per call.
        self._started = families.started.labels(*self._labels)
        self._latency = families.latency.labels(*self._labels)
        self._codes: dict[str, Counter] = {}

    def start(self) -> None:
        """Count one call that started."""
        self._started.inc()

    def observe(self, code: str, seconds: float) -> None:
        """Count one call that ended with ``code`` (a ``grpc.StatusCode`` name: ``"OK"``,
        ``"NOT_FOUND"``, …) after ``seconds``."""
        counter = self._codes.get(code)
        if counter is None:
            label = _CODE_LABELS.get(code, code)
            counter = self._codes[code] = self._families.handled.labels(*self._labels, label)
        counter.inc()
        self._latency.observe(seconds)


class RpcMetrics:
    """Counts and times the calls a gRPC server answers, by method, type and status code.

    Args:
        registry: Where the metrics go.
        known: Which methods get series of their own; the others (names a client made
            up, on a server that answers any name) share service and method ``unknown``,
            so that the number of series stays bounded. Default: every method the server
            has.
    """

    def __init__(
        self, registry: CollectorRegistry, known: Callable[[str], bool] | None = None
    ) -> None:
        self._families = _Families(registry)
        self._series: dict[tuple[str, str], RpcSeries] = {}
        self._unknown: dict[str, RpcSeries] = {}
        self._known = known

    def series(self, full_method: str, kind: str) -> RpcSeries:
        """The series of ``/package.Service/Method``, a method of type ``kind`` (see
        :func:`grpc_type`)."""
        series = self._series.get((full_method, kind))
        if series is None:
            if self._known is not None and not self._known(full_method):
                return self._unknown_series(kind)
            service, _, method = full_method.lstrip("/").rpartition("/")
            series = self._series[full_method, kind] = RpcSeries(
                self._families, kind, service or "unknown", method
            )
        return series

    def _unknown_series(self, kind: str) -> RpcSeries:
        series = self._unknown.get(kind)
        if series is None:
            series = self._unknown[kind] = RpcSeries(self._families, kind, "unknown", "unknown")
        return series
