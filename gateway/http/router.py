"""Matching request paths to routes: a segment trie, compiled once per route table.

Each route's template is inserted into a trie of literal and single-segment (``*``)
edges; a template ending in ``**`` hangs its route on the node where the ``**`` starts.
Matching walks the trie depth-first trying, at each segment, the literal edge, then
``*``, then a ``**`` tail, so that literals beat wildcards and a longer literal prefix
beats a shorter one, whatever order the routes were declared in.

A ``:verb`` suffix is taken off the last segment only when some route registered that
verb; otherwise the colon is part of the segment (``/files/a:b`` stays one segment).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.http.template import PathTemplate, SegmentKind, decode_single

__all__ = ["Match", "Router", "split_path"]

R = TypeVar("R")


@dataclass
class _Node(Generic[R]):
    literals: dict[str, _Node[R]] = field(default_factory=dict)
    single: _Node[R] | None = None
    # verb -> HTTP method -> binding, for templates ending here / with "**" from here.
    ends: dict[str, dict[str, tuple[PathTemplate, R]]] = field(default_factory=dict)
    tails: dict[str, dict[str, tuple[PathTemplate, R]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Match(Generic[R]):
    """The outcome of a lookup.

    ``route`` is set when a route matched both the path and the method; otherwise
    ``allowed`` lists the methods that the path matches (empty: no route at all, 404).
    ``segments`` are the raw path segments with the verb removed, for variable values.
    """

    route: R | None
    template: PathTemplate | None
    segments: tuple[str, ...]
    allowed: tuple[str, ...]


def split_path(raw_path: str) -> tuple[str, ...] | None:
    """Split a raw (percent-encoded) path into segments; ``None`` unless it starts with /."""
    if not raw_path.startswith("/"):
        return None
    return tuple(raw_path[1:].split("/"))


class Router(Generic[R]):
    """A compiled set of (HTTP method, template) → route bindings.

    ``add`` returns ``False`` when the same method and template shape is already bound
    (the first binding keeps it).
    """

    def __init__(self) -> None:
        self._root: _Node[R] = _Node()
        self._verbs: set[str] = set()

    def add(self, http_method: str, template: PathTemplate, route: R) -> bool:
        """Bind ``http_method`` + ``template`` to ``route``."""
        node = self._root
        table = node.ends
        for segment in template.segments:
            if segment.kind is SegmentKind.LITERAL:
                node = node.literals.setdefault(segment.literal, _Node())
            elif segment.kind is SegmentKind.SINGLE:
                if node.single is None:
                    node.single = _Node()
                node = node.single
            else:
                table = node.tails
                break
        else:
            table = node.ends
        by_method = table.setdefault(template.verb, {})
        if http_method in by_method:
            return False
        by_method[http_method] = (template, route)
        if template.verb:
            self._verbs.add(template.verb)
        return True

    def match(self, http_method: str, segments: Sequence[str]) -> Match[R]:
        """Find the route for ``http_method`` on a path split by :func:`split_path`."""
        allowed: dict[str, None] = {}
        if segments and self._verbs:
            last = segments[-1]
            head, colon, verb = last.rpartition(":")
            if colon and verb in self._verbs and head:
                stripped = (*segments[:-1], head)
                found = self._find(self._root, stripped, 0, verb, http_method, allowed)
                if found is not None:
                    return Match(found[1], found[0], stripped, ())
        plain = tuple(segments)
        found = self._find(self._root, plain, 0, "", http_method, allowed)
        if found is not None:
            return Match(found[1], found[0], plain, ())
        return Match(None, None, plain, tuple(sorted(allowed)))

    def routes(self) -> Iterable[tuple[str, PathTemplate, R]]:
        """Every binding, as (method, template, route)."""
        yield from _walk(self._root)

    def _find(
        self,
        node: _Node[R],
        segments: Sequence[str],
        index: int,
        verb: str,
        http_method: str,
        allowed: dict[str, None],
    ) -> tuple[PathTemplate, R] | None:
        tails = node.tails.get(verb)
        if index == len(segments):
            for table in (node.ends.get(verb), tails):
                if table:
                    if http_method in table:
                        return table[http_method]
                    allowed.update(dict.fromkeys(table))
            return None
        segment = segments[index]
        literal = node.literals.get(_literal_key(segment))
        if literal is not None:
            found = self._find(literal, segments, index + 1, verb, http_method, allowed)
            if found is not None:
                return found
        if node.single is not None and segment:
            found = self._find(node.single, segments, index + 1, verb, http_method, allowed)
            if found is not None:
                return found
        if tails:
            if http_method in tails:
                return tails[http_method]
            allowed.update(dict.fromkeys(tails))
        return None


def _walk(node: _Node[R]) -> Iterable[tuple[str, PathTemplate, R]]:
    for table in (*node.ends.values(), *node.tails.values()):
        for method, (template, route) in table.items():
            yield method, template, route
    for child in node.literals.values():
        yield from _walk(child)
    if node.single is not None:
        yield from _walk(node.single)


def _literal_key(segment: str) -> str:
    if "%" not in segment:
        return segment
    try:
        return decode_single(segment)
    except UnicodeDecodeError:
        return segment  # not UTF-8: matches no literal; a variable reports it
