"""The permission decision table: globs, deny over allow, admin, default deny."""

from __future__ import annotations

import pytest

from meshkit.permissions import (
    DEFAULT_POLICY,
    Decision,
    Effect,
    PatternError,
    Policy,
    Reason,
    Rule,
    decide,
    validate_pattern,
    validate_rules,
)

ALLOW, DENY = Effect.ALLOW, Effect.DENY


def policy(*rules: tuple[Effect, str], admin: bool = False) -> Policy:
    return Policy(admin=admin, rules=tuple(Rule(effect, pattern) for effect, pattern in rules))


# (policy, server, tool, allowed, reason, deciding rule index)
CASES = [
    # The seed's default: everything allowed by its one allow rule.
    (DEFAULT_POLICY, "github", "create_issue", True, Reason.RULE, 0, "seed-default"),
    (DEFAULT_POLICY, "slack", "post", True, Reason.RULE, 0, "seed-default-any-server"),
    # Nothing is allowed by default.
    (policy(), "github", "create_issue", False, Reason.DEFAULT_DENY, None, "empty-rules"),
    (policy((ALLOW, "slack/*")), "github", "x", False, Reason.DEFAULT_DENY, None, "no-match"),
    # Globs on the server.
    (policy((ALLOW, "github/*")), "github", "create_issue", True, Reason.RULE, 0, "srv-star"),
    (
        policy((ALLOW, "github/*")),
        "gitlab",
        "create_issue",
        False,
        Reason.DEFAULT_DENY,
        None,
        "srv-other",
    ),
    (policy((ALLOW, "git*/*")), "gitlab", "merge", True, Reason.RULE, 0, "srv-prefix-glob"),
    (policy((ALLOW, "git?ub/*")), "github", "merge", True, Reason.RULE, 0, "srv-question"),
    (
        policy((ALLOW, "git?ub/*")),
        "gitub",
        "merge",
        False,
        Reason.DEFAULT_DENY,
        None,
        "srv-question-needs-one",
    ),
    (
        policy((ALLOW, "github/*")),
        "github-enterprise",
        "x",
        False,
        Reason.DEFAULT_DENY,
        None,
        "srv-whole-name",
    ),
    # Globs on the tool.
    (policy((ALLOW, "*/read_*")), "fs", "read_file", True, Reason.RULE, 0, "tool-prefix"),
    (
        policy((ALLOW, "*/read_*")),
        "fs",
        "write_file",
        False,
        Reason.DEFAULT_DENY,
        None,
        "tool-prefix-miss",
    ),
    (policy((ALLOW, "*/*_file")), "fs", "write_file", True, Reason.RULE, 0, "tool-suffix"),
    (policy((ALLOW, "fs/read_file")), "fs", "read_file", True, Reason.RULE, 0, "exact"),
    (
        policy((ALLOW, "fs/read_file")),
        "fs",
        "read_files",
        False,
        Reason.DEFAULT_DENY,
        None,
        "exact-is-whole",
    ),
    (
        policy((ALLOW, "Fs/read_file")),
        "fs",
        "read_file",
        False,
        Reason.DEFAULT_DENY,
        None,
        "case-sensitive",
    ),
    (policy((ALLOW, "*/*")), "a", "b", True, Reason.RULE, 0, "star-slash-star"),
    (policy((ALLOW, "a.b/c:d")), "a.b", "c:d", True, Reason.RULE, 0, "dots-colons-literal"),
    (policy((ALLOW, "a.b/*")), "axb", "c", False, Reason.DEFAULT_DENY, None, "dot-not-wildcard"),
    # Deny wins over allow, whatever the order.
    (
        policy((ALLOW, "*"), (DENY, "*/delete_*")),
        "github",
        "delete_repo",
        False,
        Reason.RULE,
        1,
        "deny-after-allow",
    ),
    (
        policy((DENY, "*/delete_*"), (ALLOW, "*")),
        "github",
        "delete_repo",
        False,
        Reason.RULE,
        0,
        "deny-before-allow",
    ),
    (
        policy((ALLOW, "*"), (DENY, "*/delete_*")),
        "github",
        "create_issue",
        True,
        Reason.RULE,
        0,
        "deny-not-matching",
    ),
    (
        policy((ALLOW, "github/*"), (DENY, "github/admin_*")),
        "github",
        "admin_x",
        False,
        Reason.RULE,
        1,
        "deny-narrower",
    ),
    (policy((DENY, "*")), "github", "x", False, Reason.RULE, 0, "deny-all"),
    (
        policy((DENY, "*"), (ALLOW, "github/*")),
        "github",
        "x",
        False,
        Reason.RULE,
        0,
        "deny-all-beats-allow",
    ),
    (
        policy((DENY, "slack/*"), (ALLOW, "*")),
        "github",
        "x",
        True,
        Reason.RULE,
        1,
        "deny-other-server",
    ),
    # The first matching rule is the one reported.
    (policy((ALLOW, "github/*"), (ALLOW, "*")), "github", "x", True, Reason.RULE, 0, "first-allow"),
    (policy((ALLOW, "slack/*"), (ALLOW, "*")), "github", "x", True, Reason.RULE, 1, "later-allow"),
    (policy((DENY, "*/x"), (DENY, "github/*")), "github", "x", False, Reason.RULE, 0, "first-deny"),
    # Admin allows everything, deny rules included.
    (policy(admin=True), "github", "x", True, Reason.ADMIN, None, "admin-no-rules"),
    (
        policy((DENY, "*"), admin=True),
        "github",
        "delete_repo",
        True,
        Reason.ADMIN,
        None,
        "admin-beats-deny",
    ),
]


@pytest.mark.parametrize(
    ("rules", "server", "tool", "allowed", "reason", "index"),
    [pytest.param(*case[:6], id=case[6]) for case in CASES],
)
def test_decision(
    rules: Policy, server: str, tool: str, allowed: bool, reason: Reason, index: int | None
) -> None:
    decision = decide(rules, server, tool)
    expected_rule = rules.rules[index] if index is not None else None
    assert decision == Decision(allowed, reason, index, expected_rule)


def test_the_table_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    "pattern",
    ["*", "github/*", "*/delete_*", "a.b/c:d", "git?ub/tool-1", "srv@host/x+y", "*/*"],
)
def test_valid_patterns_are_accepted(pattern: str) -> None:
    validate_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("github", 'must have the form "<server>/<tool>"', id="no-slash"),
        pytest.param("a/b/c", 'must have the form "<server>/<tool>"', id="two-slashes"),
        pytest.param("/tool", "has an empty server part", id="empty-server"),
        pytest.param("github/", "has an empty tool part", id="empty-tool"),
        pytest.param("git hub/x", "character not allowed in the server part", id="space"),
        pytest.param("github/[a-z]", "character not allowed in the tool part", id="class"),
        pytest.param("x/" + "a" * 300, "is longer than 256 characters", id="too-long"),
    ],
)
def test_malformed_pattern_is_refused_naming_it(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError) as refused:
        validate_pattern(pattern)
    assert problem in str(refused.value)
    assert repr(pattern) in str(refused.value)


def test_rule_list_validation_names_the_rule_index() -> None:
    rules = [Rule(Effect.ALLOW, "github/*"), Rule(Effect.DENY, "bad pattern")]
    with pytest.raises(PatternError, match=r"^rule 1: pattern 'bad pattern'") as refused:
        validate_rules(rules)
    assert refused.value.index == 1
