"""The comments of a contract, read from the source info protoc records: leading
comments only, by full name, with the ``//`` layout trimmed."""

from __future__ import annotations

from pathlib import Path

from gateway.comments import leading_comments
from tests.support.protoc import compiled

PROTO = """\
// The file's own comment, on the syntax statement.
syntax = "proto3";

package test.comments.v1;

// Detached: a blank line parts it from the service.

// WidgetService makes widgets.
service WidgetService {
  // Gets one widget.
  //
  // A second paragraph,
  //   indented in part.
  rpc GetWidget(Widget) returns (Widget);
  rpc Bare(Widget) returns (Widget); // A trailing comment is no description.
}

/* A widget,
 * in a block comment. */
message Widget {
  // buf:lint:ignore FIELD_LOWER_SNAKE_CASE
  // Its name.
  string name = 1;
  // Its parts.
  repeated Part parts = 2;
  int32 uncommented = 3;

  // Part is one part of a widget.
  message Part {
    // The part's size, in millimetres.
    int32 size_mm = 1;
  }
}
"""


def test_each_leading_comment_is_found_by_full_name_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "widgets.proto").write_text(PROTO)
    files = compiled(tmp_path, "widgets.proto").file

    assert leading_comments(files) == {
        "test.comments.v1.WidgetService": "WidgetService makes widgets.",
        "test.comments.v1.WidgetService.GetWidget": (
            "Gets one widget.\n\nA second paragraph,\n  indented in part."
        ),
        "test.comments.v1.Widget": "A widget,\nin a block comment.",
        "test.comments.v1.Widget.name": "Its name.",
        "test.comments.v1.Widget.parts": "Its parts.",
        "test.comments.v1.Widget.Part": "Part is one part of a widget.",
        "test.comments.v1.Widget.Part.size_mm": "The part's size, in millimetres.",
    }
