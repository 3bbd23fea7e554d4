"""What a PromQL expression (as a Grafana panel holds it) reads: its series names, the
label names its selectors match on, and the label names it groups by.

Not a parser: enough of the grammar for dashboards, on text with Grafana's variables
(``$job``, ``${job}``, ``$__rate_interval``) in it. Strings and ranges are blanked first,
so that nothing inside a regular expression or a duration is taken for a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]]*\]")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", re.IGNORECASE
)
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_LABEL = re.compile(r"[A-Za-z_]\w*")
#: Words that are not series names where they stand alone.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "atan2"}
)


@dataclass(frozen=True)
class Query:
    """What one expression reads.

    Attributes:
        metrics: Every series name it selects.
        matched: Each selector's series name with the label names it matches on.
        grouped: The label names of its ``by``, ``without``, ``on``, ``ignoring`` and
            ``group_left``/``group_right`` clauses.
    """

    metrics: frozenset[str]
    matched: tuple[tuple[str, frozenset[str]], ...]
    grouped: frozenset[str]


def read(expression: str) -> Query:
    """The series and labels ``expression`` reads."""
    text = _STRING.sub('""', expression)
    text = _RANGE.sub("[]", text)
    text = _VARIABLE.sub("0", text)
    grouped = frozenset(
        label for clause in _GROUPING.findall(text) for label in _LABEL.findall(clause)
    )
    text = _GROUPING.sub(" ", text)
    matched = tuple(
        (name, frozenset(_MATCHER.findall(matchers)))
        for name, matchers in _SELECTOR.findall(text)
        if name
    )
    text = _SELECTOR.sub(lambda found: f" {found.group(1) or ''} ", text)
    metrics = {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name.lower() not in _KEYWORDS
    }
    return Query(frozenset(metrics), matched, grouped)


def variable_metrics(query: str) -> frozenset[str]:
    """The series names a Grafana variable's query reads: ``label_values(metric, label)``
    and ``query_result(expression)`` read a series, ``label_values(label)`` none."""
    found = re.fullmatch(r"\s*label_values\s*\((.*),\s*[A-Za-z_]\w*\s*\)\s*", query, re.DOTALL)
    if found:
        return read(found.group(1)).metrics
    if re.fullmatch(r"\s*label_values\s*\(\s*[A-Za-z_]\w*\s*\)\s*", query):
        return frozenset()
    found = re.fullmatch(r"\s*query_result\s*\((.*)\)\s*", query, re.DOTALL)
    return read(found.group(1) if found else query).metrics
