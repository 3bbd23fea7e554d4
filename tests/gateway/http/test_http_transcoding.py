"""The transcoding table: real HTTP requests through the real gateway to a real plugin.

One mesh (registry, transcoding plugin, catalog, upstreams, uvicorn) serves the whole
module. Each case is a request and what must come back: the HTTP status and values at
dotted paths of the JSON answer (``request.`` is the request message the plugin got).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from tests.gateway.http.conftest import BODY_LIMIT_BYTES, Mesh, running_mesh

NO_BODY = object()


@dataclass(frozen=True)
class Case:
    """One request and what must come back."""

    id: str
    method: str
    path: str
    status: int = 200
    expect: Mapping[str, Any] = field(default_factory=dict)
    body: Any = NO_BODY
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    reason: str = ""


def ok(id: str, method: str, path: str, rpc: str, body: Any = NO_BODY, **expect: Any) -> Case:
    """A successful call of ``rpc``; ``expect`` keys use ``__`` for dots."""
    values = {key.replace("__", "."): value for key, value in expect.items()}
    return Case(id, method, path, 200, {"rpc": rpc, **values}, body)


def bad(
    id: str, method: str, path: str, message: str, body: Any = NO_BODY, status: int = 400
) -> Case:
    """A request the gateway refuses, with a message containing ``message``."""
    return Case(id, method, path, status, {"code": 3} if status == 400 else {}, body, {}, message)


def code(name: str, number: int, http: int) -> Case:
    """The plugin fails with status ``name``; the answer is its Status with ``http``."""
    return Case(
        f"grpc_{name.lower()}_is_{http}",
        "GET",
        f"/v1/things/t1?fail={name}",
        http,
        {"code": number, "message": "GetThing failed as asked"},
        reason="TEST_FAILED",
    )


ROUTING = [
    ok("single_segment_variable", "GET", "/v1/things/abc", "GetThing", request__id="abc"),
    ok("additional_binding", "GET", "/v1/alias/things/abc", "GetThing", request__id="abc"),
    ok("literal_beats_variable", "GET", "/v1/things/special", "GetSpecial", request__id=""),
    ok("collection_get", "GET", "/v1/things", "ListThings"),
    ok(
        "body_star",
        "POST",
        "/v1/things",
        "CreateThing",
        {"id": "n1", "int32Value": 5},
        request__id="n1",
        request__int32Value=5,
    ),
    ok(
        "body_field",
        "PATCH",
        "/v1/things/t1",
        "UpdateThing",
        {"name": "in", "count": "7"},
        request__id="t1",
        request__inner__name="in",
        request__inner__count="7",
    ),
    ok(
        "body_field_and_query",
        "PATCH",
        "/v1/things/t1?int32Value=3",
        "UpdateThing",
        {"name": "x"},
        request__int32Value=3,
        request__inner__name="x",
    ),
    ok(
        "path_wins_over_body",
        "PUT",
        "/v1/things/path-id",
        "ReplaceThing",
        {"id": "body-id", "name": "n"},
        request__id="path-id",
        request__name="n",
    ),
    ok("delete_without_body", "DELETE", "/v1/things/t1", "DeleteThing", request__id="t1"),
    ok("path_wins_over_query", "GET", "/v1/things/t1?id=x", "GetThing", request__id="t1"),
    ok(
        "path_wins_over_nested_query",
        "GET",
        "/v1/inner/a/deep/b?inner.deep.leaf=c&inner.name=d",
        "GetNested",
        request__inner__name="a",
        request__inner__deep__leaf="b",
    ),
    ok(
        "repeated_field_as_body",
        "POST",
        "/v1/things/t1/tags",
        "SetTags",
        ["a", "b"],
        request__id="t1",
        request__tags=["a", "b"],
    ),
    ok(
        "nested_field_paths",
        "GET",
        "/v1/inner/n1/deep/l1",
        "GetNested",
        request__inner__name="n1",
        request__inner__deep__leaf="l1",
    ),
    ok(
        "double_star_variable",
        "GET",
        "/v1/files/a/b/c.txt",
        "GetFile",
        request__name="files/a/b/c.txt",
    ),
    ok("double_star_matches_zero_segments", "GET", "/v1/files", "GetFile", request__name="files"),
    ok(
        "multi_segment_keeps_encoded_slash",
        "GET",
        "/v1/files/a%2Fb/c",
        "GetFile",
        request__name="files/a%2Fb/c",
    ),
    ok(
        "multi_segment_decodes_the_rest",
        "GET",
        "/v1/files/a%20b/%C3%A9",
        "GetFile",
        request__name="files/a b/é",
    ),
    ok(
        "fixed_shape_variable",
        "GET",
        "/v1/shelves/s1/books/b1",
        "GetBook",
        request__name="shelves/s1/books/b1",
    ),
    ok(
        "fixed_shape_variable_keeps_encoded_slash",
        "GET",
        "/v1/shelves/s%2F1/books/b1",
        "GetBook",
        request__name="shelves/s%2F1/books/b1",
    ),
    ok("single_segment_decodes_slash", "GET", "/v1/things/a%2Fb", "GetThing", request__id="a/b"),
    ok(
        "single_segment_decodes_utf8", "GET", "/v1/things/caf%C3%A9", "GetThing", request__id="café"
    ),
    ok("plus_in_path_is_literal", "GET", "/v1/things/a+b", "GetThing", request__id="a+b"),
    ok("unnamed_wildcard", "GET", "/v1/wild/anything/thing", "GetWild"),
    ok("custom_verb", "POST", "/v1/things/t1:archive", "ArchiveThing", {}, request__id="t1"),
    ok(
        "unregistered_verb_is_part_of_the_segment",
        "GET",
        "/v1/things/t1:frobnicate",
        "GetThing",
        request__id="t1:frobnicate",
    ),
    Case("encoded_colon_is_no_verb", "POST", "/v1/things/t1%3Aarchive", 405, {"code": 12}),
    ok(
        "custom_http_method",
        "SEARCH",
        "/v1/search",
        "SearchThings",
        {"name": "q"},
        request__name="q",
    ),
    ok(
        "unannotated_rpc",
        "POST",
        "/test.transcoding.v1.TranscodingService/Plain",
        "Plain",
        {"id": "p", "color": "COLOR_RED"},
        request__id="p",
        request__color="COLOR_RED",
    ),
    Case(
        "response_body_message",
        "GET",
        "/v1/things/t1/request",
        200,
        {"id": "t1", "int64Value": "0", "tags": []},
    ),
    Case("response_body_scalar", "GET", "/v1/things/t1/rpc", 200, {"": "GetRpcName"}),
    Case(
        "unannotated_rpc_other_method",
        "GET",
        "/test.transcoding.v1.TranscodingService/Plain",
        405,
        {"code": 12},
    ),
    Case(
        "client_streaming_rpc_not_routed",
        "POST",
        "/test.transcoding.v1.TranscodingService/Upload",
        404,
        {"code": 5},
    ),
    Case(
        "annotated_rpc_not_at_grpc_path",
        "POST",
        "/test.transcoding.v1.TranscodingService/GetThing",
        404,
        {"code": 5},
    ),
    Case("unknown_path", "GET", "/v2/nothing", 404, {"code": 5}, reason="ROUTE_NOT_FOUND"),
    Case("trailing_slash", "GET", "/v1/things/", 404, {"code": 5}),
    Case("fixed_shape_too_short", "GET", "/v1/shelves/s1/books", 404),
    Case("wrong_method", "POST", "/v1/things/t1", 405, {"code": 12}, reason="METHOD_NOT_ALLOWED"),
]

QUERY = [
    ok("query_int32", "GET", "/v1/things?int32Value=42", "ListThings", request__int32Value=42),
    ok(
        "query_proto_name", "GET", "/v1/things?int32_value=42", "ListThings", request__int32Value=42
    ),
    ok(
        "query_int64_is_a_string",
        "GET",
        "/v1/things?int64Value=9007199254740993",
        "ListThings",
        request__int64Value="9007199254740993",
    ),
    ok(
        "query_uint64_max",
        "GET",
        "/v1/things?uint64Value=18446744073709551615",
        "ListThings",
        request__uint64Value="18446744073709551615",
    ),
    ok("query_double", "GET", "/v1/things?doubleValue=1.5", "ListThings", request__doubleValue=1.5),
    ok("query_float", "GET", "/v1/things?floatValue=0.25", "ListThings", request__floatValue=0.25),
    ok(
        "query_bool_true", "GET", "/v1/things?boolValue=true", "ListThings", request__boolValue=True
    ),
    ok("query_bool_one", "GET", "/v1/things?boolValue=1", "ListThings", request__boolValue=True),
    ok(
        "query_bytes_base64",
        "GET",
        "/v1/things?bytesValue=aGk%3D",
        "ListThings",
        request__bytesValue="aGk=",
    ),
    ok(
        "query_enum_by_name",
        "GET",
        "/v1/things?color=COLOR_RED",
        "ListThings",
        request__color="COLOR_RED",
    ),
    ok(
        "query_enum_by_number",
        "GET",
        "/v1/things?color=2",
        "ListThings",
        request__color="COLOR_GREEN",
    ),
    ok("query_repeated", "GET", "/v1/things?tags=a&tags=b", "ListThings", request__tags=["a", "b"]),
    ok(
        "query_repeated_ints",
        "GET",
        "/v1/things?numbers=1&numbers=2",
        "ListThings",
        request__numbers=[1, 2],
    ),
    ok(
        "query_repeated_enums",
        "GET",
        "/v1/things?colors=COLOR_RED&colors=2",
        "ListThings",
        request__colors=["COLOR_RED", "COLOR_GREEN"],
    ),
    ok(
        "query_nested",
        "GET",
        "/v1/things?inner.name=x&inner.deep.leaf=y",
        "ListThings",
        request__inner__name="x",
        request__inner__deep__leaf="y",
    ),
    ok(
        "query_nested_repeated",
        "GET",
        "/v1/things?inner.deep.tags=a&inner.deep.tags=b",
        "ListThings",
        request__inner__deep__tags=["a", "b"],
    ),
    ok(
        "query_nested_int64",
        "GET",
        "/v1/things?inner.count=5",
        "ListThings",
        request__inner__count="5",
    ),
    ok(
        "query_timestamp",
        "GET",
        "/v1/things?time=2024-01-02T03:04:05Z",
        "ListThings",
        request__time="2024-01-02T03:04:05Z",
    ),
    ok(
        "query_timestamp_offset",
        "GET",
        "/v1/things?time=2024-01-02T03:04:05%2B01:00",
        "ListThings",
        request__time="2024-01-02T02:04:05Z",
    ),
    ok(
        "query_duration",
        "GET",
        "/v1/things?duration=1.5s",
        "ListThings",
        request__duration="1.500s",
    ),
    ok(
        "query_field_mask",
        "GET",
        "/v1/things?mask=name,inner.deep",
        "ListThings",
        request__mask="name,inner.deep",
    ),
    ok("query_wrapped_int", "GET", "/v1/things?wrappedInt=7", "ListThings", request__wrappedInt=7),
    ok(
        "query_wrapped_bool",
        "GET",
        "/v1/things?wrappedBool=false",
        "ListThings",
        request__wrappedBool=False,
    ),
    ok(
        "query_wrapped_string",
        "GET",
        "/v1/things?wrappedString=hi",
        "ListThings",
        request__wrappedString="hi",
    ),
    ok("query_optional", "GET", "/v1/things?maybe=x", "ListThings", request__maybe="x"),
    ok(
        "query_percent_decoded",
        "GET",
        "/v1/things?name=a%2Fb%20c",
        "ListThings",
        request__name="a/b c",
    ),
    ok("query_plus_is_space", "GET", "/v1/things?name=a+b", "ListThings", request__name="a b"),
    ok("query_empty_value", "GET", "/v1/things?name=", "ListThings", request__name=""),
    ok(
        "query_with_path_variable",
        "GET",
        "/v1/things/t1?int32Value=4&inner.name=n",
        "GetThing",
        request__id="t1",
        request__int32Value=4,
        request__inner__name="n",
    ),
    bad("query_unknown", "GET", "/v1/things?nope=1", "unknown query parameter 'nope'"),
    bad("query_unknown_nested", "GET", "/v1/things?inner.nope=1", "inner.nope"),
    bad("query_message_field", "GET", "/v1/things?inner=x", "names a message field"),
    bad("query_map_field", "GET", "/v1/things?labels=x", "labels"),
    bad("query_repeated_message", "GET", "/v1/things?inners.name=x", "inners.name"),
    bad("query_below_scalar", "GET", "/v1/things?name.x=1", "name.x"),
    bad("query_bad_int", "GET", "/v1/things?int32Value=abc", "int32_value"),
    bad("query_int_out_of_range", "GET", "/v1/things?int32Value=99999999999", "int32_value"),
    bad("query_bad_enum", "GET", "/v1/things?color=PURPLE", "color"),
    bad("query_bad_bool", "GET", "/v1/things?boolValue=maybe", "boolValue"),
    bad("query_bad_timestamp", "GET", "/v1/things?time=yesterday", "time"),
    bad("query_bad_duration", "GET", "/v1/things?duration=5", "duration"),
    bad("query_bad_field_mask", "GET", "/v1/things?mask=inner_name", "mask"),
    bad(
        "query_twice_not_repeated", "GET", "/v1/things?int32Value=1&int32Value=2", "more than once"
    ),
    bad("query_with_body_star", "POST", "/v1/things?name=x", "the body binds", {}),
    bad("query_sets_body_field", "PATCH", "/v1/things/t1?inner.name=x", "the body binds", {}),
    bad("query_not_utf8", "GET", "/v1/things?name=%FF", "UTF-8"),
]

BODY = [
    ok(
        "body_enum_by_number",
        "POST",
        "/v1/things",
        "CreateThing",
        {"color": 1},
        request__color="COLOR_RED",
    ),
    ok(
        "body_int64_from_number",
        "POST",
        "/v1/things",
        "CreateThing",
        {"int64Value": 5},
        request__int64Value="5",
    ),
    ok(
        "body_proto_names",
        "POST",
        "/v1/things",
        "CreateThing",
        {"int32_value": 3},
        request__int32Value=3,
    ),
    ok(
        "body_well_known_types",
        "POST",
        "/v1/things",
        "CreateThing",
        {"time": "2024-01-02T03:04:05Z", "duration": "2s", "wrappedInt": 9, "labels": {"k": "v"}},
        request__time="2024-01-02T03:04:05Z",
        request__duration="2s",
        request__wrappedInt=9,
        request__labels={"k": "v"},
    ),
    ok("body_empty_is_an_empty_message", "POST", "/v1/things", "CreateThing", b"", request__id=""),
    ok(
        "body_ignored_without_body_binding",
        "GET",
        "/v1/things/t1",
        "GetThing",
        b"not json",
        request__id="t1",
    ),
    ok(
        "unpopulated_fields_are_emitted",
        "GET",
        "/v1/things/t1",
        "GetThing",
        request__int64Value="0",
        request__boolValue=False,
        request__color="COLOR_UNSPECIFIED",
        request__tags=[],
        request__labels={},
    ),
    bad("body_not_json", "POST", "/v1/things", "not valid JSON", b"{"),
    bad("body_not_an_object", "POST", "/v1/things", "must be a JSON object", [1]),
    bad("body_unknown_field", "POST", "/v1/things", "nope", {"nope": 1}),
    bad("body_wrong_type", "POST", "/v1/things", "int32Value", {"int32Value": "x"}),
    bad("body_bad_enum", "POST", "/v1/things", "color", {"color": "PURPLE"}),
    bad("body_infinite_enum", "POST", "/v1/things", "infinity", b'{"color": 1e400}'),
    bad("body_nested_wrong_type", "POST", "/v1/things", "count", {"inner": {"count": "x"}}),
    bad("body_field_wrong_type", "PATCH", "/v1/things/t1", "inner", [1, 2]),
    bad("body_not_utf8", "POST", "/v1/things", "not valid JSON", b'{"id": "\xff"}'),
    bad(
        "body_too_large",
        "POST",
        "/v1/things",
        "larger than",
        {"name": "x" * (BODY_LIMIT_BYTES + 1)},
        status=413,
    ),
    bad("path_not_utf8", "GET", "/v1/things/%FF", "UTF-8"),
]

ERRORS = [
    code("INVALID_ARGUMENT", 3, 400),
    code("UNAUTHENTICATED", 16, 401),
    code("PERMISSION_DENIED", 7, 403),
    code("NOT_FOUND", 5, 404),
    code("ALREADY_EXISTS", 6, 409),
    code("ABORTED", 10, 409),
    code("RESOURCE_EXHAUSTED", 8, 429),
    code("CANCELLED", 1, 499),
    code("UNIMPLEMENTED", 12, 501),
    code("UNAVAILABLE", 14, 503),
    code("DEADLINE_EXCEEDED", 4, 504),
    code("FAILED_PRECONDITION", 9, 400),
    code("OUT_OF_RANGE", 11, 400),
    code("INTERNAL", 13, 500),
    code("UNKNOWN", 2, 500),
    code("DATA_LOSS", 15, 500),
    Case(
        "deadline_from_grpc_timeout_is_504",
        "GET",
        "/v1/things/t1?delayMs=3000",
        504,
        {"code": 4},
        headers={"grpc-timeout": "100m"},
    ),
    Case(
        "bad_grpc_timeout",
        "GET",
        "/v1/things/t1",
        400,
        {"code": 3},
        headers={"grpc-timeout": "soon"},
        reason="INVALID_HEADER",
    ),
]

CASES = ROUTING + QUERY + BODY + ERRORS


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """One mesh for every case of the module."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path of decoded JSON; ``""`` is the whole value."""
    for part in path.split(".") if path else ():
        assert isinstance(value, dict), f"{value!r} has no {part!r}"
        assert part in value, f"no {part!r} in {value!r}"
        value = value[part]
    return value


def test_the_table_has_at_least_80_distinct_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 80


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_transcoding(http_mesh: Mesh, case: Case) -> None:
    kwargs: dict[str, Any] = {"headers": dict(case.headers)}
    if isinstance(case.body, bytes):
        kwargs["content"] = case.body
    elif case.body is not NO_BODY:
        kwargs["json"] = case.body
    response = await http_mesh.client.request(case.method, case.path, **kwargs)
    assert response.status_code == case.status, response.text
    answer = response.json()
    for path, expected in case.expect.items():
        assert dig(answer, path) == expected, f"{path} in {answer}"
    if case.message:
        assert case.message in answer["message"], answer
    if case.reason:
        assert answer["details"][0]["reason"] == case.reason, answer
    if response.status_code >= 400:
        assert set(answer) == {"code", "message", "details"}, answer
        assert response.headers["content-type"] == "application/json"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("query", "content_type"),
    [
        ("?bodyContentType=text/csv", "text/csv"),
        ("", "application/octet-stream"),  # the answer names none
    ],
)
async def test_an_http_body_answer_is_its_raw_bytes_with_its_own_content_type(
    http_mesh: Mesh, query: str, content_type: str
) -> None:
    response = await http_mesh.client.get(f"/v1/things/t1:download{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content == b"file t1"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_stream_of_http_bodies_is_their_bytes_in_order_typed_by_the_first(
    http_mesh: Mesh,
) -> None:
    path = "/v1/things/t1:chunks?streamCount=3&bodyContentType=text/plain"
    response = await http_mesh.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain"
    assert response.content == b"chunk 0;chunk 1;chunk 2;"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_failing_stream_of_http_bodies_ends_after_what_it_sent(http_mesh: Mesh) -> None:
    path = "/v1/things/t1:chunks?fail=INTERNAL&failAfter=2&bodyContentType=text/plain"
    response = await http_mesh.client.get(path)
    assert response.status_code == 200
    assert response.content == b"chunk 0;chunk 1;"  # no JSON error mixed into the bytes


@pytest.mark.asyncio(loop_scope="module")
async def test_an_http_body_stream_failing_before_its_first_chunk_is_an_error_status(
    http_mesh: Mesh,
) -> None:
    response = await http_mesh.client.get("/v1/things/t1:chunks?fail=NOT_FOUND&failAfter=0")
    assert response.status_code == 404
    assert response.json()["code"] == 5
