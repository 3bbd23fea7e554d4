"""Path templates: parsing, matching through the compiled router, percent-decoding."""

from __future__ import annotations

import pytest

from gateway.http.router import Router, split_path
from gateway.http.template import (
    SegmentKind,
    TemplateError,
    decode_multi,
    decode_single,
    parse_template,
)

L, S, M = SegmentKind.LITERAL, SegmentKind.SINGLE, SegmentKind.MULTI


@pytest.mark.parametrize(
    ("source", "kinds", "variables", "verb"),
    [
        ("/v1/things", [L, L], [], ""),
        ("/v1/things/{id}", [L, L, S], [("id", 2, 3)], ""),
        ("/v1/*/x", [L, S, L], [], ""),
        ("/v1/**", [L, M], [], ""),
        ("/v1/{name=files/**}", [L, L, M], [("name", 1, None)], ""),
        ("/v1/{name=shelves/*/books/*}", [L, L, S, L, S], [("name", 1, 5)], ""),
        ("/v1/{a.b.c}", [L, S], [("a.b.c", 1, 2)], ""),
        ("/v1/{id}:archive", [L, S], [("id", 1, 2)], "archive"),
        ("/v1/things:batchGet", [L, L], [], "batchGet"),
        ("/v1/{a}/{b=x/*}", [L, S, L, S], [("a", 1, 2), ("b", 2, 4)], ""),
        ("/v1/{f=**}", [L, M], [("f", 1, None)], ""),
    ],
    ids=[
        "literals",
        "variable",
        "wildcard",
        "double_wildcard",
        "variable_with_double_wildcard",
        "variable_with_fixed_shape",
        "nested_field_path",
        "verb_after_variable",
        "verb_after_literal",
        "two_variables",
        "variable_of_everything",
    ],
)
def test_template_parses(
    source: str, kinds: list[SegmentKind], variables: list[tuple[str, int, int | None]], verb: str
) -> None:
    template = parse_template(source)
    assert [segment.kind for segment in template.segments] == kinds
    assert [(v.name, v.start, v.end) for v in template.variables] == variables
    assert template.verb == verb


@pytest.mark.parametrize(
    "source",
    [
        "v1/things",
        "/",
        "/v1//x",
        "/v1/{id",
        "/v1/{}",
        "/v1/{a={b}}",
        "/v1/**/x",
        "/v1/{a=**}/x",
        "/v1/{id}:",
        "/v1/{id}/{id}",
        "/v1/{1a}",
        "/v1/x:a:b",
    ],
    ids=[
        "no_leading_slash",
        "root_only",
        "empty_segment",
        "unclosed_variable",
        "empty_variable",
        "nested_variable",
        "double_wildcard_not_last",
        "double_wildcard_variable_not_last",
        "empty_verb",
        "variable_twice",
        "bad_field_name",
        "two_verbs",
    ],
)
def test_bad_template_is_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(source)


@pytest.mark.parametrize(
    ("raw", "single", "multi"),
    [
        ("plain", "plain", "plain"),
        ("a%2Fb", "a/b", "a%2Fb"),
        ("a%2fb", "a/b", "a%2Fb"),
        ("a%20b", "a b", "a b"),
        ("caf%C3%A9", "café", "café"),
        ("a+b", "a+b", "a+b"),
        ("%252F", "%2F", "%2F"),
        ("x%3Ay", "x:y", "x:y"),
    ],
    ids=["plain", "slash", "lowercase_slash", "space", "utf8", "plus", "double_encoded", "colon"],
)
def test_percent_decoding(raw: str, single: str, multi: str) -> None:
    assert decode_single(raw) == single
    assert decode_multi(raw) == multi


def test_invalid_utf8_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_single("%FF")


ROUTES = [
    ("GET", "/v1/things/{id}", "get"),
    ("DELETE", "/v1/things/{id}", "delete"),
    ("GET", "/v1/things/special", "special"),
    ("GET", "/v1/things/{id}/parts/{part}", "part"),
    ("GET", "/v1/things/special/parts/{part}", "special_part"),
    ("POST", "/v1/things/{id}:archive", "archive"),
    ("GET", "/v1/{name=files/**}", "files"),
    ("GET", "/v1/{name=files/**}:download", "download"),
    ("GET", "/v1/*/wild", "wild"),
    ("GET", "/v1/**", "catch_all"),
    ("GET", "/v2/{a.b}", "nested"),
]


def router() -> Router[str]:
    built: Router[str] = Router()
    for method, source, name in ROUTES:
        assert built.add(method, parse_template(source), name)
    return built


@pytest.mark.parametrize(
    ("method", "path", "route", "values"),
    [
        ("GET", "/v1/things/x", "get", {"id": "x"}),
        ("DELETE", "/v1/things/x", "delete", {"id": "x"}),
        ("GET", "/v1/things/special", "special", {}),
        ("GET", "/v1/things/x/parts/p", "part", {"id": "x", "part": "p"}),
        ("GET", "/v1/things/special/parts/p", "special_part", {"part": "p"}),
        ("POST", "/v1/things/x:archive", "archive", {"id": "x"}),
        ("GET", "/v1/files/a/b", "files", {"name": "files/a/b"}),
        ("GET", "/v1/files/a/b:download", "download", {"name": "files/a/b"}),
        ("GET", "/v1/files", "files", {"name": "files"}),
        ("GET", "/v1/other/wild", "wild", {}),
        ("GET", "/v1/other/tame", "catch_all", {}),
        ("GET", "/v1/things/x:unknown", "get", {"id": "x:unknown"}),
        ("GET", "/v1/things/a%2Fb", "get", {"id": "a/b"}),
        ("GET", "/v1/files/a%2Fb/c", "files", {"name": "files/a%2Fb/c"}),
        ("GET", "/v2/q", "nested", {"a.b": "q"}),
        ("GET", "/v1/thing%73/special", "special", {}),
        ("GET", "/v1/things/x:archive", "get", {"id": "x:archive"}),
    ],
    ids=[
        "variable",
        "same_path_other_method",
        "literal_beats_variable",
        "two_variables",
        "literal_prefix_beats_variable_prefix",
        "verb",
        "double_wildcard",
        "double_wildcard_with_verb",
        "double_wildcard_zero_segments",
        "wildcard_beats_double_wildcard",
        "double_wildcard_catches_the_rest",
        "unregistered_verb_stays_in_segment",
        "single_segment_decoded",
        "multi_segment_keeps_slash",
        "nested_field",
        "encoded_literal_matches",
        "verb_without_this_method_joins_the_variable",
    ],
)
def test_router_matches(method: str, path: str, route: str, values: dict[str, str]) -> None:
    segments = split_path(path)
    assert segments is not None
    match = router().match(method, segments)
    assert match.route == route
    assert match.template is not None
    found = {".".join(k): v for k, v in match.template.values(match.segments).items()}
    assert found == values


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/things/x", ("DELETE", "GET")),
        ("PUT", "/v1/things/special", ("DELETE", "GET")),
        ("GET", "/v3/x", ()),
        ("GET", "/v2/q/r", ()),
    ],
    ids=[
        "wrong_method_lists_allowed",
        "literal_and_variable_methods_merge",
        "no_route",
        "too_short",
    ],
)
def test_router_misses(method: str, path: str, allowed: tuple[str, ...]) -> None:
    segments = split_path(path)
    assert segments is not None
    match = router().match(method, segments)
    assert match.route is None
    assert match.allowed == allowed


def test_same_method_and_shape_twice_keeps_the_first() -> None:
    built = router()
    assert not built.add("GET", parse_template("/v1/things/{other}"), "again")
    segments = split_path("/v1/things/x")
    assert segments is not None
    assert built.match("GET", segments).route == "get"


def test_routes_lists_every_binding() -> None:
    listed = {(method, template.source, name) for method, template, name in router().routes()}
    assert listed == set(ROUTES)
