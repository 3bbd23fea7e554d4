"""Semver ranges as plugins declare them in their dependencies."""

from __future__ import annotations

import pytest

from registry.semver_range import InvalidRange, VersionRange, satisfies

CASES = [
    # (range, version, accepted)
    ("", "1.2.3", True),
    ("", "", True),
    ("*", "0.0.1", True),
    ("x", "9.9.9", True),
    (">=1.0.0,<2.0.0", "1.0.0", True),
    (">=1.0.0,<2.0.0", "1.9.9", True),
    (">=1.0.0,<2.0.0", "2.0.0", False),
    (">=1.0.0,<2.0.0", "0.9.0", False),
    (">=1.0.0 <2.0.0", "1.5.0", True),
    (">= 1.0, < 2", "1.5.0", True),
    (">1.2.3", "1.2.4", True),
    (">1.2.3", "1.2.3", False),
    ("<=1.2.3", "1.2.3", True),
    ("=1.2.3", "1.2.3", True),
    ("==1.2.3", "1.2.4", False),
    ("1.2.3", "1.2.3", True),
    ("1.2.3", "1.2.4", False),
    ("v1.2.3", "1.2.3", True),
    ("1.2.3", "v1.2.3", True),
    ("1.x", "1.9.0", True),
    ("1.x", "2.0.0", False),
    ("1.2.*", "1.2.7", True),
    ("1.2.*", "1.3.0", False),
    ("1.2", "1.2.9", True),
    ("1.2", "1.3.0", False),
    (">1.2", "1.2.9", False),
    (">1.2", "1.3.0", True),
    ("<=1.2", "1.2.9", True),
    ("<=1.2", "1.3.0", False),
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.9.9", True),
    ("^1.2", "2.0.0", False),
    ("^1.2", "1.1.9", False),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("~1.2.0", "1.2.9", True),
    ("~1.2.0", "1.3.0", False),
    ("~1.2", "1.2.5", True),
    ("~1", "1.9.0", True),
    ("~1", "2.0.0", False),
    ("^1.0.0 || ^3.0.0", "3.1.0", True),
    ("^1.0.0 || ^3.0.0", "2.1.0", False),
    (">=2.0.0", "2.0.0-rc.1", False),
    (">=2.0.0-rc.1", "2.0.0-rc.2", True),
    (">=1.0.0", "not-a-version", False),
    (">=1.0.0", "", False),
]


@pytest.mark.parametrize(
    ("version_range", "version", "accepted"),
    CASES,
    ids=[f"{r or 'empty'} {'accepts' if a else 'rejects'} {v or 'empty'}" for r, v, a in CASES],
)
def test_range_accepts_exactly_the_versions_it_describes(
    version_range: str, version: str, accepted: bool
) -> None:
    assert satisfies(version, version_range) is accepted


@pytest.mark.parametrize(
    "version_range",
    [">=", "^", "1.2.3.4", "1.x.3", "1.2-rc", "=>1.0", "foo", ">*", "1.0.0 - 2.0.0"],
    ids=["operator-only", "caret-only", "four-parts", "number-after-wildcard",
         "partial-prerelease", "reversed-operator", "word", "greater-than-anything", "hyphen"],
)  # fmt: skip
def test_malformed_range_is_refused(version_range: str) -> None:
    with pytest.raises(InvalidRange):
        VersionRange.parse(version_range)
