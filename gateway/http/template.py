"""``google.api.http`` path templates: parsing, and reading variables out of a matched path.

Grammar (from ``google/api/http.proto``)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

``**`` matches zero or more segments and may only come last (before the verb). A
variable without ``=`` is ``{f=*}``. A template is parsed into a flat list of
:class:`Segment` s (what the route trie is built from) and its :class:`Variable` s, each
spanning a range of those segments.

Percent-decoding (DESIGN §5): a variable that spans one segment is fully decoded
(``%2F`` becomes ``/``); one that may span several keeps ``%2F`` encoded, so that the
value can be split back into the segments it came from.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "PathTemplate",
    "Segment",
    "SegmentKind",
    "TemplateError",
    "Variable",
    "decode_multi",
    "decode_single",
    "parse_template",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[^/{}=*:]+")
_ENCODED_SLASH = re.compile(r"%2[fF]")


class TemplateError(ValueError):
    """A path template does not follow the grammar; the message says where."""


class SegmentKind(enum.Enum):
    """What one template segment matches."""

    LITERAL = "literal"
    """Exactly its text (compared with the percent-decoded path segment)."""
    SINGLE = "*"
    """Any one non-empty segment."""
    MULTI = "**"
    """Zero or more segments; only last."""


@dataclass(frozen=True)
class Segment:
    """One segment of a template."""

    kind: SegmentKind
    literal: str = ""


@dataclass(frozen=True)
class Variable:
    """A variable: the field it sets and the segments it spans.

    ``end`` is ``None`` when the variable ends with ``**`` and so runs to the end of the
    path; otherwise the span is ``segments[start:end]``.
    """

    field_path: tuple[str, ...]
    start: int
    end: int | None

    @property
    def single_segment(self) -> bool:
        """Whether the variable always captures exactly one segment (fully decoded)."""
        return self.end is not None and self.end - self.start == 1

    @property
    def name(self) -> str:
        """The field path as written, ``a.b.c``."""
        return ".".join(self.field_path)


@dataclass(frozen=True)
class PathTemplate:
    """A parsed template.

    Attributes:
        source: The template as written in the rule.
        segments: Every segment, variables expanded into what they match.
        variables: The variables, in order.
        verb: The custom verb after ``:``, or ``""``.
    """

    source: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    def values(self, path_segments: Sequence[str]) -> dict[tuple[str, ...], str]:
        """The variables' values in a path that matched this template.

        Args:
            path_segments: The raw (still percent-encoded) segments of the path, verb
                removed.
        """
        found: dict[tuple[str, ...], str] = {}
        for variable in self.variables:
            if variable.single_segment:
                found[variable.field_path] = decode_single(path_segments[variable.start])
            else:
                span = path_segments[variable.start : variable.end]
                found[variable.field_path] = "/".join(decode_multi(raw) for raw in span)
        return found


def decode_single(raw: str) -> str:
    """Fully percent-decode one segment (``%2F`` becomes ``/``)."""
    return unquote(raw, errors="strict") if "%" in raw else raw


def decode_multi(raw: str) -> str:
    """Percent-decode one segment of a multi-segment variable, keeping ``%2F`` encoded."""
    if "%" not in raw:
        return raw
    return "%2F".join(unquote(part, errors="strict") for part in _ENCODED_SLASH.split(raw))


def parse_template(source: str) -> PathTemplate:
    """Parse a path template.

    Raises:
        TemplateError: the template does not follow the grammar.
    """
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.segments: list[Segment] = []
        self.variables: list[Variable] = []

    def fail(self, what: str) -> TemplateError:
        return TemplateError(f"path template {self.source!r}: {what} at offset {self.pos}")

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def parse(self) -> PathTemplate:
        if self.peek() != "/":
            raise self.fail("expected '/' at the start")
        self.pos += 1
        self.parse_segments(in_variable=False)
        verb = ""
        if self.peek() == ":":
            self.pos += 1
            match = _LITERAL.match(self.source, self.pos)
            if match is None:
                raise self.fail("expected a verb after ':'")
            verb = match.group()
            self.pos = match.end()
        if self.pos != len(self.source):
            raise self.fail(f"unexpected {self.peek()!r}")
        for index, segment in enumerate(self.segments):
            if segment.kind is SegmentKind.MULTI and index != len(self.segments) - 1:
                raise TemplateError(f"path template {self.source!r}: '**' must come last")
        return PathTemplate(self.source, tuple(self.segments), tuple(self.variables), verb)

    def parse_segments(self, *, in_variable: bool) -> None:
        while True:
            self.parse_segment(in_variable=in_variable)
            if self.peek() != "/":
                return
            self.pos += 1

    def parse_segment(self, *, in_variable: bool) -> None:
        if self.source.startswith("**", self.pos):
            self.pos += 2
            self.segments.append(Segment(SegmentKind.MULTI))
        elif self.peek() == "*":
            self.pos += 1
            self.segments.append(Segment(SegmentKind.SINGLE))
        elif self.peek() == "{":
            if in_variable:
                raise self.fail("nested variable")
            self.parse_variable()
        else:
            match = _LITERAL.match(self.source, self.pos)
            if match is None:
                raise self.fail("expected a segment")
            self.segments.append(Segment(SegmentKind.LITERAL, match.group()))
            self.pos = match.end()

    def parse_variable(self) -> None:
        self.pos += 1  # "{"
        field_path: list[str] = []
        while True:
            match = _IDENT.match(self.source, self.pos)
            if match is None:
                raise self.fail("expected a field name")
            field_path.append(match.group())
            self.pos = match.end()
            if self.peek() != ".":
                break
            self.pos += 1
        start = len(self.segments)
        if self.peek() == "=":
            self.pos += 1
            self.parse_segments(in_variable=True)
        else:
            self.segments.append(Segment(SegmentKind.SINGLE))
        if self.peek() != "}":
            raise self.fail("expected '}'")
        self.pos += 1
        multi = self.segments[-1].kind is SegmentKind.MULTI
        name = tuple(field_path)
        if any(v.field_path == name for v in self.variables):
            raise TemplateError(f"path template {self.source!r}: variable {'.'.join(name)} twice")
        self.variables.append(Variable(name, start, None if multi else len(self.segments)))
