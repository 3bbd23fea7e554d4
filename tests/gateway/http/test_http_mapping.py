"""Request mapping without a network: query, body and path into the request message;
the gRPC→HTTP table and Status rendering; headers and deadlines; which bindings a
contract yields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor, descriptor_pool, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.http.errors import BadRequest, http_status, status_json
from gateway.http.headers import deadline_seconds, forwarded_metadata, response_headers
from gateway.http.routes import HttpRoute, build_routes
from gateway.http.transcode import decode_json_body, transcode_request
from tests.gateway.http.plugin import service_descriptor
from tests.support.registry import Contract, Method, contract_file


@dataclass(frozen=True)
class Rpc:
    """The least a route needs of a catalog method."""

    descriptor: descriptor.MethodDescriptor
    comments: Mapping[str, str] = field(default_factory=dict)


def routes_by_rpc() -> dict[str, HttpRoute[Rpc]]:
    table = build_routes([Rpc(method) for method in service_descriptor().methods])
    return {
        route.rpc.name: route
        for route in table.routes
        if route.template.source != "/v1/alias/things/{id}"
    }


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("int32Value", "7")], {"int32Value": 7}),
        ([("int32_value", "7")], {"int32Value": 7}),
        ([("int64Value", "-9223372036854775808")], {"int64Value": "-9223372036854775808"}),
        ([("floatValue", "NaN")], {"floatValue": "NaN"}),
        ([("doubleValue", "-Infinity")], {"doubleValue": "-Infinity"}),
        ([("boolValue", "FALSE")], {}),
        ([("boolValue", "True")], {"boolValue": True}),
        ([("bytesValue", "_-8=")], {"bytesValue": "/+8="}),
        ([("color", "COLOR_GREEN")], {"color": "COLOR_GREEN"}),
        ([("color", "1")], {"color": "COLOR_RED"}),
        ([("colors", "1"), ("colors", "COLOR_GREEN")], {"colors": ["COLOR_RED", "COLOR_GREEN"]}),
        ([("tags", "b"), ("tags", "a")], {"tags": ["b", "a"]}),
        (
            [("inner.deep.leaf", "x"), ("inner.name", "y")],
            {"inner": {"name": "y", "deep": {"leaf": "x"}}},
        ),
        ([("inner.deep.tags", "1")], {"inner": {"deep": {"tags": ["1"]}}}),
        ([("time", "1970-01-01T00:00:01.5Z")], {"time": "1970-01-01T00:00:01.500Z"}),
        ([("duration", "-0.5s")], {"duration": "-0.500s"}),
        ([("mask", "a.b,cD")], {"mask": "a.b,cD"}),
        ([("wrappedInt", "0")], {"wrappedInt": 0}),
        ([("wrappedBool", "true")], {"wrappedBool": True}),
        ([("wrappedString", "")], {"wrappedString": ""}),
        ([("maybe", "")], {"maybe": ""}),
        ([], {}),
    ],
    ids=[
        "json_name",
        "proto_name",
        "int64_min",
        "float_nan",
        "double_infinity",
        "bool_false_any_case",
        "bool_true_any_case",
        "bytes_url_safe_base64",
        "enum_name",
        "enum_number",
        "repeated_enum_mixed",
        "repeated_keeps_order",
        "nested_siblings",
        "nested_repeated",
        "timestamp_fraction",
        "negative_duration",
        "field_mask_paths",
        "wrapper_zero_is_set",
        "bool_wrapper",
        "string_wrapper_empty_is_set",
        "presence_empty_is_set",
        "nothing",
    ],
)
def test_query_maps_to_fields(query: list[tuple[str, str]], expected: dict[str, Any]) -> None:
    route = routes_by_rpc()["ListThings"]
    assert as_dict(transcode_request(route, {}, query, None)) == expected


@pytest.mark.parametrize(
    ("query", "reason", "words"),
    [
        ([("x", "1")], "UNKNOWN_QUERY_PARAMETER", "unknown query parameter 'x'"),
        ([("inner.x", "1")], "UNKNOWN_QUERY_PARAMETER", "inner.x"),
        ([("inner", "1")], "UNKNOWN_QUERY_PARAMETER", "message field"),
        ([("time.seconds", "1")], "UNKNOWN_QUERY_PARAMETER", "time.seconds"),
        ([("labels.k", "v")], "UNKNOWN_QUERY_PARAMETER", "labels.k"),
        ([("inners", "v")], "UNKNOWN_QUERY_PARAMETER", "message field"),
        ([("color", "BLUE")], "INVALID_FIELD", "color"),
        ([("uint64Value", "-1")], "INVALID_FIELD", "uint64_value"),
        ([("int32Value", "1.5")], "INVALID_FIELD", "int32_value"),
        ([("boolValue", "yes")], "INVALID_FIELD", "boolValue"),
        ([("wrappedBool", "2")], "INVALID_FIELD", "wrappedBool"),
        ([("time", "2024-13-01T00:00:00Z")], "INVALID_FIELD", "time"),
        ([("name", "a"), ("name", "b")], "REPEATED_QUERY_PARAMETER", "more than once"),
    ],
    ids=[
        "unknown",
        "unknown_nested",
        "message",
        "below_well_known_type",
        "map_entry",
        "repeated_message",
        "bad_enum",
        "negative_unsigned",
        "fraction_for_int",
        "bad_bool",
        "bad_bool_wrapper",
        "bad_month",
        "singular_twice",
    ],
)
def test_bad_query_is_400_naming_the_parameter(
    query: list[tuple[str, str]], reason: str, words: str
) -> None:
    route = routes_by_rpc()["ListThings"]
    with pytest.raises(BadRequest) as caught:
        transcode_request(route, {}, query, None)
    assert caught.value.reason == reason
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("rpc", "path", "body", "expected"),
    [
        (
            "CreateThing",
            {},
            {"id": "b", "inner": {"count": 3}},
            {"id": "b", "inner": {"count": "3"}},
        ),
        ("ReplaceThing", {("id",): "p"}, {"id": "b", "name": "n"}, {"id": "p", "name": "n"}),
        ("UpdateThing", {("id",): "p"}, {"name": "n"}, {"id": "p", "inner": {"name": "n"}}),
        ("UpdateThing", {("id",): "p"}, None, {"id": "p"}),
        ("SetTags", {("id",): "p"}, ["x"], {"id": "p", "tags": ["x"]}),
        (
            "GetNested",
            {("inner", "name"): "a", ("inner", "deep", "leaf"): "b"},
            None,
            {"inner": {"name": "a", "deep": {"leaf": "b"}}},
        ),
        ("GetThing", {("id",): "0"}, {"id": "ignored"}, {"id": "0"}),
    ],
    ids=[
        "body_star",
        "path_wins_over_body_star",
        "body_field",
        "no_body_for_body_field",
        "repeated_body_field",
        "nested_path_variables",
        "body_ignored_without_body_binding",
    ],
)
def test_body_and_path_map_to_fields(
    rpc: str, path: dict[tuple[str, ...], str], body: Any, expected: dict[str, Any]
) -> None:
    route = routes_by_rpc()[rpc]
    assert as_dict(transcode_request(route, path, [], body)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"", None), (b"  \n", None), (b"{}", {}), (b"[1]", [1]), (b'"x"', "x")],
    ids=["empty", "blank", "object", "array", "string"],
)
def test_json_body_decodes(raw: bytes, expected: Any) -> None:
    assert decode_json_body(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [b"{", b"\xff", b"[" * 100_000, b"{'a': 1}", b"NaN?"],
    ids=["truncated", "not_utf8", "too_deep", "single_quotes", "garbage"],
)
def test_bad_json_body_is_400(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_json_body(raw)
    assert caught.value.reason == "INVALID_JSON"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (code_pb2.OK, 200),
        (code_pb2.INVALID_ARGUMENT, 400),
        (code_pb2.FAILED_PRECONDITION, 400),
        (code_pb2.OUT_OF_RANGE, 400),
        (code_pb2.UNAUTHENTICATED, 401),
        (code_pb2.PERMISSION_DENIED, 403),
        (code_pb2.NOT_FOUND, 404),
        (code_pb2.ALREADY_EXISTS, 409),
        (code_pb2.ABORTED, 409),
        (code_pb2.RESOURCE_EXHAUSTED, 429),
        (code_pb2.CANCELLED, 499),
        (code_pb2.UNKNOWN, 500),
        (code_pb2.INTERNAL, 500),
        (code_pb2.DATA_LOSS, 500),
        (code_pb2.UNIMPLEMENTED, 501),
        (code_pb2.UNAVAILABLE, 503),
        (code_pb2.DEADLINE_EXCEEDED, 504),
        (99, 500),
    ],
    ids=lambda value: str(value),
)
def test_grpc_code_maps_to_http_status(code: int, status: int) -> None:
    assert http_status(code) == status


def test_status_json_keeps_details_of_unknown_types() -> None:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="R", domain="d"))
    unknown = any_pb2.Any(type_url="type.googleapis.com/nobody.Knows", value=b"\x01")
    status = status_pb2.Status(code=5, message="gone", details=[info, unknown])
    assert json.loads(status_json(status)) == {
        "code": 5,
        "message": "gone",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R", "domain": "d"},
            {"@type": "type.googleapis.com/nobody.Knows", "value": "AQ=="},
        ],
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"grpc-metadata-foo", b"bar")], [("foo", "bar")]),
        ([(b"grpc-metadata-trace-bin", b"aGk")], [("trace-bin", b"hi")]),
        (
            [(b"traceparent", b"00-a-b-01"), (b"tracestate", b"k=v")],
            [("traceparent", "00-a-b-01"), ("tracestate", "k=v")],
        ),
        ([(b"x-request-id", b"r1")], [("x-request-id", "r1")]),
        ([(b"authorization", b"Bearer t"), (b"x-other", b"1"), (b"cookie", b"c")], []),
        ([(b"x-plugmesh-identity", b"{}"), (b"x-plugmesh-identity-signature", b"s")], []),
        (
            [
                (b"grpc-metadata-x-plugmesh-identity", b"{}"),
                (b"grpc-metadata-x-plugmesh-user-id", b"u"),
            ],
            [],
        ),
        ([(b"grpc-metadata-grpc-timeout", b"1S"), (b"grpc-metadata-", b"x")], []),
        ([(b"grpc-metadata-bad key", b"x")], []),
    ],
    ids=[
        "grpc_metadata_prefix_stripped",
        "binary_value_base64",
        "trace_context",
        "request_id",
        "other_headers_stay",
        "identity_headers_dropped",
        "identity_headers_dropped_behind_prefix",
        "reserved_and_empty_keys_dropped",
        "invalid_key_dropped",
    ],
)
def test_headers_forwarded_as_metadata(
    headers: list[tuple[bytes, bytes]], expected: list[tuple[str, str | bytes]]
) -> None:
    assert list(forwarded_metadata(headers)) == expected


def test_bad_binary_header_is_400() -> None:
    with pytest.raises(BadRequest):
        forwarded_metadata([(b"grpc-metadata-x-bin", b"!!")])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 30.0),
        (b"2S", 2.0),
        (b"1500m", 1.5),
        (b"5M", 60.0),
        (b"1H", 60.0),
        (b"100u", 0.0001),
        (b"7n", 7e-9),
    ],
    ids=["default", "seconds", "millis", "minutes_capped", "hours_capped", "micros", "nanos"],
)
def test_deadline_from_grpc_timeout(value: bytes | None, seconds: float) -> None:
    headers = [] if value is None else [(b"grpc-timeout", value)]
    found = deadline_seconds(headers, default_seconds=30.0, maximum_seconds=60.0)
    assert found == pytest.approx(seconds)


def test_no_default_deadline_means_none_unless_the_client_sets_one() -> None:
    assert deadline_seconds([], default_seconds=None, maximum_seconds=5.0) is None
    found = deadline_seconds([(b"grpc-timeout", b"9S")], default_seconds=None, maximum_seconds=5.0)
    assert found == 5.0


@pytest.mark.parametrize("value", [b"", b"1", b"S", b"123456789S", b"1s", b"-1S", b"1.5S"])
def test_bad_grpc_timeout_is_400(value: bytes) -> None:
    with pytest.raises(BadRequest):
        deadline_seconds([(b"grpc-timeout", value)], default_seconds=1.0, maximum_seconds=2.0)


def test_response_headers_carry_metadata() -> None:
    headers = response_headers(
        (("x-a", "1"), ("x-b-bin", b"hi"), ("grpc-status", "0"), ("x-c", "a\r\nb")),
        (("x-t", "done"),),
    )
    assert headers == [
        (b"grpc-metadata-x-a", b"1"),
        (b"grpc-metadata-x-b-bin", b"aGk="),
        (b"grpc-trailer-x-t", b"done"),
    ]


def test_contract_yields_one_route_per_servable_binding() -> None:
    contract = Contract(
        "test.bindings.v1",
        "BindingService",
        [
            Method("Get", [("get", "/v1/x/{id}"), ("get", "/v1/alias/{id}")]),
            Method("Taken", [("get", "/v1/x/{other}"), ("post", "/v1/x/{id}")]),
            Method("NoField", [("get", "/v1/y/{nope}")]),
            Method("BadTemplate", [("get", "v1/z")]),
            Method("Custom", [("report", "/v1/r")]),
            Method("Plain"),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    for file in _with_imports(contract):
        pool.Add(file)
    service = pool.FindServiceByName(contract.full_name)
    table = build_routes([Rpc(method) for method in service.methods])
    assert sorted(route.label for route in table.routes) == [
        "GET /v1/alias/{id}",
        "GET /v1/x/{id}",
        "POST /test.bindings.v1.BindingService/Plain",
        "POST /v1/x/{id}",
        "REPORT /v1/r",
    ]


def _with_imports(contract: Contract) -> list[Any]:
    from tests.support.registry import descriptor_set

    return list(descriptor_set([contract_file(contract)]).file)
