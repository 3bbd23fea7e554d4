"""The permission model: may this principal call this tool on this MCP server, and why?

People (the users plugin) and machine users (the machine-users plugin) are governed by
the same model, so it lives here, in the toolkit, for both (and for the gateway).

A principal has a :class:`Role` on the plugmesh API itself and a :class:`Policy` on MCP
servers and tools: ordered allow and deny rules over ``<server>/<tool>`` glob patterns.
``admin`` allows everything; otherwise a matching deny rule denies, else a matching allow
rule allows, else the call is denied (nothing is allowed by default). Deny wins, so rule
order never changes the outcome; it decides which rule is reported: the first matching
deny rule, or else the first matching allow rule.

This module knows nothing of protobuf; :mod:`meshkit.permissions.convert` translates.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_POLICY",
    "MAX_PATTERN_LENGTH",
    "MAX_RULES",
    "Decision",
    "Effect",
    "PatternError",
    "Policy",
    "Reason",
    "Role",
    "Rule",
    "decide",
    "rules_from_json",
    "rules_to_json",
    "validate_pattern",
    "validate_rules",
]

MAX_PATTERN_LENGTH = 256
MAX_RULES = 1000

# A side of a pattern: letters, digits and the punctuation MCP names use, plus globs.
_SIDE = re.compile(r"[A-Za-z0-9_.:@+\-*?]+")


class Role(enum.Enum):
    """What a principal may do on the plugmesh API itself."""

    USER = "user"
    ADMIN = "admin"


class Effect(enum.Enum):
    """What a matching rule does."""

    ALLOW = "allow"
    DENY = "deny"


class Reason(enum.Enum):
    """Why a decision came out as it did."""

    RULE = "rule"
    ADMIN = "admin"
    DEFAULT_DENY = "default_deny"


class PatternError(ValueError):
    """A rule's pattern is malformed; the message names the pattern and what is wrong."""

    def __init__(self, pattern: str, problem: str, index: int | None = None) -> None:
        where = f"rule {index}: " if index is not None else ""
        super().__init__(f"{where}pattern {pattern!r} {problem}")
        self.pattern = pattern
        self.index = index


@dataclass(frozen=True)
class Rule:
    """Allow or deny the calls whose ``<server>/<tool>`` matches ``pattern``."""

    effect: Effect
    pattern: str
    description: str = ""

    def matches(self, server: str, tool: str) -> bool:
        """Whether this rule applies to ``tool`` on ``server``."""
        server_glob, tool_glob = _sides(self.pattern)
        return bool(_compiled(server_glob).fullmatch(server)) and bool(
            _compiled(tool_glob).fullmatch(tool)
        )


@dataclass(frozen=True)
class Policy:
    """A principal's permissions on MCP servers and tools."""

    admin: bool = False
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of a check and what decided it."""

    allowed: bool
    reason: Reason
    rule_index: int | None = None
    rule: Rule | None = None


#: The seed's default ``{tools: ['*'], servers: ['*'], admin: false}``: one allow rule.
DEFAULT_POLICY = Policy(admin=False, rules=(Rule(Effect.ALLOW, "*"),))


def decide(policy: Policy, server: str, tool: str) -> Decision:
    """Decide whether ``policy`` allows calling ``tool`` on ``server``."""
    if policy.admin:
        return Decision(allowed=True, reason=Reason.ADMIN)
    first_allow: int | None = None
    for index, rule in enumerate(policy.rules):
        if not rule.matches(server, tool):
            continue
        if rule.effect is Effect.DENY:
            return Decision(allowed=False, reason=Reason.RULE, rule_index=index, rule=rule)
        if first_allow is None:
            first_allow = index
    if first_allow is not None:
        rule = policy.rules[first_allow]
        return Decision(allowed=True, reason=Reason.RULE, rule_index=first_allow, rule=rule)
    return Decision(allowed=False, reason=Reason.DEFAULT_DENY)


def validate_rules(rules: Sequence[Rule]) -> None:
    """Raise :class:`PatternError` for the first malformed pattern, naming its index."""
    if len(rules) > MAX_RULES:
        raise PatternError("", f"list has {len(rules)} rules; at most {MAX_RULES} are allowed")
    for index, rule in enumerate(rules):
        validate_pattern(rule.pattern, index)


def validate_pattern(pattern: str, index: int | None = None) -> None:
    """Raise :class:`PatternError` when ``pattern`` is not ``*`` or ``<server>/<tool>``."""
    if not pattern:
        raise PatternError(pattern, "is empty", index)
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(pattern, f"is longer than {MAX_PATTERN_LENGTH} characters", index)
    if pattern == "*":
        return
    parts = pattern.split("/")
    if len(parts) != 2:
        raise PatternError(pattern, 'must have the form "<server>/<tool>" (one "/")', index)
    for side, value in zip(("server", "tool"), parts, strict=True):
        if not value:
            raise PatternError(pattern, f"has an empty {side} part", index)
        if not _SIDE.fullmatch(value):
            raise PatternError(
                pattern,
                f"has a character not allowed in the {side} part "
                "(letters, digits, _ . : @ + - and the globs * ?)",
                index,
            )


def _sides(pattern: str) -> tuple[str, str]:
    if pattern == "*":
        return "*", "*"
    server, _, tool = pattern.partition("/")
    return server, tool


@functools.lru_cache(maxsize=4096)
def _compiled(glob: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.DOTALL)


def rules_to_json(rules: Sequence[Rule]) -> list[dict[str, str]]:
    """The rules as JSON-ready dicts, in order, for a store's JSON column."""
    return [
        {"effect": rule.effect.value, "pattern": rule.pattern, "description": rule.description}
        for rule in rules
    ]


def rules_from_json(rules: Sequence[dict[str, str]]) -> tuple[Rule, ...]:
    """The rules back from what :func:`rules_to_json` stored."""
    return tuple(
        Rule(Effect(rule["effect"]), rule["pattern"], rule.get("description", "")) for rule in rules
    )
