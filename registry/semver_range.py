"""Semver ranges as plugins write them in ``Dependency.version_range``.

Accepted forms (comparators in one set are joined by ``,`` or spaces; sets by ``||``)::

    ""  "*"  "x"            any version
    ">=1.0.0,<2.0.0"        comparators: = == > >= < <= (partial versions fill with 0)
    "1.2.3"                 exactly 1.2.3
    "1.x"  "1.2.*"  "1.2"   x-ranges: the missing or wildcard parts may be anything
    "^1.2"  "^0.2.3"        compatible: up to the next change of the leftmost non-zero part
    "~1.2.0"  "~1"          approximately: patch updates (minor ones when only the major is given)
    ">=1.0 <2 || ^3"        either set

A leading ``v`` on a version is ignored. Prerelease versions compare as semver says
(``2.0.0-rc.1 < 2.0.0``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

import semver

_WILDCARDS = frozenset({"x", "X", "*"})
_OPERATORS: dict[str, Callable[[semver.Version, semver.Version], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_COMPARATOR = re.compile(r"^(?P<op>==|=|>=|<=|>|<|\^|~)?\s*v?(?P<version>\S+)$")
_PARTIAL = re.compile(
    r"^(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


class InvalidRange(ValueError):
    """The text is not a version range this module understands."""


@dataclass(frozen=True)
class _Comparator:
    op: str
    version: semver.Version

    def matches(self, version: semver.Version) -> bool:
        return _OPERATORS[self.op](version, self.version)


@dataclass(frozen=True)
class VersionRange:
    """A parsed range: a version matches when it satisfies every comparator of any set."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse ``text``; raises :class:`InvalidRange` naming the part that is wrong."""
        alternatives = tuple(_parse_set(part) for part in text.split("||"))
        return cls(text=text, alternatives=alternatives)

    @property
    def accepts_any(self) -> bool:
        """Whether every version, even a missing or malformed one, is accepted."""
        return any(not comparators for comparators in self.alternatives)

    def contains(self, version: str) -> bool:
        """Whether ``version`` (a full semver, optionally ``v``-prefixed) is in the range.

        A version that is not valid semver is only in the ranges that accept anything.
        """
        if self.accepts_any:
            return True
        parsed = parse_version(version)
        if parsed is None:
            return False
        return any(all(c.matches(parsed) for c in comparators) for comparators in self.alternatives)


def parse_version(text: str) -> semver.Version | None:
    """Parse a full version such as ``1.2.3`` or ``v1.2.3-rc.1``; ``None`` when invalid."""
    try:
        return semver.Version.parse(text.strip().removeprefix("v"))
    except ValueError:
        return None


def satisfies(version: str, version_range: str) -> bool:
    """Whether ``version`` is in ``version_range``; raises :class:`InvalidRange`."""
    return VersionRange.parse(version_range).contains(version)


def _parse_set(text: str) -> tuple[_Comparator, ...]:
    # "> = 1.0" style spacing is not supported, but ">= 1.0" is: glue operators to versions.
    tokens = re.sub(r"(==|=|>=|<=|>|<|\^|~)\s+", r"\1", text.replace(",", " ")).split()
    comparators: list[_Comparator] = []
    for token in tokens:
        comparators.extend(_parse_comparator(token))
    return tuple(comparators)


def _parse_comparator(token: str) -> list[_Comparator]:
    match = _COMPARATOR.match(token)
    if match is None:
        raise InvalidRange(f"invalid version comparator {token!r}")
    op = match["op"] or "="
    partial = _PARTIAL.match(match["version"])
    if partial is None:
        raise InvalidRange(f"invalid version {match['version']!r} in {token!r}")
    parts = [partial["major"], partial["minor"], partial["patch"]]
    given = 0
    for part in parts:
        if part is None or part in _WILDCARDS:
            break
        given += 1
    if any(part is not None and part not in _WILDCARDS for part in parts[given:]):
        raise InvalidRange(f"a wildcard must not be followed by a number in {token!r}")
    numbers = [int(part) for part in parts[:given]] + [0] * (3 - given)
    base = semver.Version(
        major=numbers[0], minor=numbers[1], patch=numbers[2], prerelease=partial["pre"]
    )
    if partial["pre"] is not None and given < 3:
        raise InvalidRange(f"a prerelease needs a full version in {token!r}")
    return _expand(op, base, given, token)


def _expand(op: str, base: semver.Version, given: int, token: str) -> list[_Comparator]:
    if op == "^":
        if given == 0:
            return []
        upper = _caret_upper(base, given)
        return [_Comparator(">=", base), _Comparator("<", upper)]
    if op == "~":
        if given == 0:
            return []
        upper = base.bump_major() if given == 1 else base.replace(prerelease=None).bump_minor()
        return [_Comparator(">=", base), _Comparator("<", upper)]
    if given == 3:
        return [_Comparator("==" if op == "=" else op, base)]
    # A partial version: "1.2" means 1.2.x, so each operator applies to that whole block.
    if given == 0:
        if op in {"=", "==", ">=", "<="}:
            return []
        raise InvalidRange(f"{token!r} matches no version")
    upper = base.bump_major() if given == 1 else base.bump_minor()
    if op in {"=", "=="}:
        return [_Comparator(">=", base), _Comparator("<", upper)]
    if op == ">":
        return [_Comparator(">=", upper)]
    if op == ">=":
        return [_Comparator(">=", base)]
    if op == "<":
        return [_Comparator("<", base)]
    return [_Comparator("<", upper)]  # "<="


def _caret_upper(base: semver.Version, given: int) -> semver.Version:
    if base.major > 0 or given == 1:
        return base.bump_major()
    if base.minor > 0 or given == 2:
        return base.bump_minor()
    return base.bump_patch()
