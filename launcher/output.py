"""How the inspecting commands print: a table for people, one JSON document for scripts.

``plugmesh status`` and ``plugmesh config`` take ``-o table`` (the default) or
``-o json``; both formats carry the same information.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["JSON", "OUTPUT_FORMATS", "TABLE", "print_json", "render_table"]

TABLE = "table"
JSON = "json"
#: The values of ``-o``/``--output``, the default first.
OUTPUT_FORMATS = (TABLE, JSON)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table with columns padded to their widest cell."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def print_json(document: dict[str, Any], out: TextIO) -> None:
    """Print ``document`` indented, ending in a newline, so that ``jq`` and people both read it."""
    json.dump(document, out, indent=2)
    out.write("\n")
