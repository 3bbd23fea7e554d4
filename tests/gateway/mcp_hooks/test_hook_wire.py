"""The result changes hooks ask for, and what the gateway refuses to apply."""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types
import pytest

from gateway.mcpfront.hooks.wire import BadAnswer, checked_result, from_struct, redacted, to_struct
from plugmesh.mcp.v1 import hooks_pb2

RESULT: dict[str, Any] = {
    "content": [{"type": "text", "text": "key AKIA123 and AKIA123"}],
    "structuredContent": {"token": "AKIA123", "count": 2, "items": ["a", "AKIA123x"]},
    "isError": False,
}


def test_redacting_values_replaces_them_inside_every_string_of_the_result() -> None:
    changed = redacted(RESULT, hooks_pb2.Redact(values=["AKIA123"]))

    assert changed["content"][0]["text"] == "key [redacted] and [redacted]"
    assert changed["structuredContent"] == {
        "token": "[redacted]",
        "count": 2,
        "items": ["a", "[redacted]x"],
    }
    assert RESULT["content"][0]["text"] == "key AKIA123 and AKIA123"  # not changed in place


def test_redacting_json_pointers_replaces_the_values_they_name_and_ignores_the_rest() -> None:
    redact = hooks_pb2.Redact(
        json_pointers=["/structuredContent/token", "/structuredContent/items/1", "/nothing/here"],
        replacement="***",
    )

    changed = redacted(RESULT, redact)

    assert changed["structuredContent"] == {"token": "***", "count": 2, "items": ["a", "***"]}
    # What the pointers removed goes from the text too.
    assert changed["content"] == [{"type": "text", "text": "key *** and ***"}]


def test_a_text_block_mirroring_the_structured_content_is_written_again_from_it() -> None:
    structured = {"user": "ada", "pin": 1234, "note": "ok"}
    result = {
        "content": [
            {"type": "text", "text": json.dumps(structured)},
            {"type": "text", "text": "pin 1234 for ada"},
        ],
        "structuredContent": structured,
    }

    changed = redacted(result, hooks_pb2.Redact(json_pointers=["/structuredContent/pin"]))

    mirrored = {"user": "ada", "pin": "[redacted]", "note": "ok"}
    assert changed["structuredContent"] == mirrored
    assert json.loads(changed["content"][0]["text"]) == mirrored
    # A number, and strings shorter than four characters, are not searched for elsewhere.
    assert changed["content"][1]["text"] == "pin 1234 for ada"


def test_a_removed_string_is_replaced_in_the_meta_and_everywhere_else() -> None:
    result = {
        "content": [{"type": "text", "text": "see s3cr3t", "_meta": {"echo": "s3cr3t"}}],
        "structuredContent": {"secret": "s3cr3t", "copy": "s3cr3t!"},
        "_meta": {"trace": {"last": "s3cr3t"}},
    }

    changed = redacted(result, hooks_pb2.Redact(json_pointers=["/structuredContent/secret"]))

    assert "s3cr3t" not in json.dumps(changed)
    assert changed["structuredContent"] == {"secret": "[redacted]", "copy": "[redacted]!"}


def test_json_pointer_escapes_name_keys_with_slashes_and_tildes() -> None:
    result = {"content": [], "structuredContent": {"a/b": "x", "c~d": "y"}}

    changed = redacted(
        result,
        hooks_pb2.Redact(json_pointers=["/structuredContent/a~1b", "/structuredContent/c~0d"]),
    )

    assert changed["structuredContent"] == {"a/b": "[redacted]", "c~d": "[redacted]"}


def test_a_pointer_to_the_whole_result_or_a_malformed_one_changes_nothing() -> None:
    assert redacted(RESULT, hooks_pb2.Redact(json_pointers=["", "content/0"])) == RESULT


def test_a_result_that_is_no_call_tool_result_is_a_bad_answer() -> None:
    with pytest.raises(BadAnswer, match="not an MCP CallToolResult"):
        checked_result({"content": "text, not a list"}, None)


def test_a_result_without_the_structured_content_its_tool_declares_is_a_bad_answer() -> None:
    tool = types.Tool(
        name="add",
        input_schema={"type": "object"},
        output_schema={"type": "object", "properties": {"sum": {"type": "number"}}},
    )
    text = {"content": [{"type": "text", "text": "3"}]}

    with pytest.raises(BadAnswer, match="structuredContent"):
        checked_result(text, tool)
    assert checked_result({**text, "isError": True}, tool)["isError"] is True
    assert checked_result({**text, "structuredContent": {"sum": 3}}, tool)


def test_whole_numbers_come_back_from_a_struct_as_integers() -> None:
    value = {"n": 3, "x": 1.5, "nested": [{"m": 10}], "big": 2.0**60}

    assert from_struct(to_struct(value)) == {
        "n": 3,
        "x": 1.5,
        "nested": [{"m": 10}],
        "big": 2.0**60,
    }


def test_redacting_values_leaves_types_uris_and_keys_in_their_form() -> None:
    result = {
        "content": [
            {"type": "text", "text": "text"},
            {"type": "resource", "resource": {"uri": "file:///text", "text": "a text"}},
        ],
        "_meta": {"note": "text", "text": 1},
    }

    changed = redacted(result, hooks_pb2.Redact(values=["x"]))

    assert changed["content"] == [
        {"type": "text", "text": "te[redacted]t"},
        {"type": "resource", "resource": {"uri": "file:///text", "text": "a te[redacted]t"}},
    ]
    assert changed["_meta"] == {"note": "te[redacted]t", "text": 1}
