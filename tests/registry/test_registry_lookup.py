"""Event routing patterns and dependency checks over registered services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry.lookup import check_dependencies, event_services, subject_matches
from registry.model import (
    Dependency,
    Health,
    Instance,
    InstanceRecord,
    ServiceSpec,
    ServiceView,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
USERS = "plugmesh.users.v1.UserService"


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("user.created", "user.created", True),
        ("user.created", "user.deleted", False),
        ("user.*", "user.created", True),
        ("user.*", "user.permissions.updated", False),
        ("user.>", "user.permissions.updated", True),
        ("user.>", "user", False),
        (">", "auth.login", True),
        ("*.created", "machine_user.created", True),
        ("*", "user.created", False),
        ("user.*.updated", "user.permissions.updated", True),
        ("user", "user.created", False),
    ],
    ids=["exact", "exact-other", "star-one-token", "star-not-two-tokens", "gt-rest",
         "gt-needs-a-token", "gt-everything", "leading-star", "star-alone", "inner-star",
         "prefix-is-not-match"],
)  # fmt: skip
def test_consume_patterns_match_like_nats_subjects(
    pattern: str, subject: str, matches: bool
) -> None:
    assert subject_matches(pattern, subject) is matches


def test_event_services_lists_producers_and_matching_consumers_by_name() -> None:
    specs = [
        ServiceSpec("users", "1.0.0", (USERS,), produces=("user.created",)),
        ServiceSpec("audit", "1.0.0", ("a.v1.Audit",), consumes=(">",)),
        ServiceSpec("mail", "1.0.0", ("m.v1.Mail",), consumes=("user.*",)),
        ServiceSpec("other", "1.0.0", ("o.v1.Other",), consumes=("auth.*",)),
    ]

    assert event_services(specs, "user.created") == (["users"], ["audit", "mail"])


def _users(version: str, health: Health) -> ServiceView:
    spec = ServiceSpec("users", version, (USERS,))
    record = InstanceRecord("i1", "users", "127.0.0.1:1", version, {}, NOW, NOW)
    return ServiceView(spec, (Instance(record, health, NOW),))


DEPENDENCY_CASES = [
    # (range, provider version, provider health, satisfied, reason contains)
    (">=1.0.0,<2.0.0", "1.2.0", Health.SERVING, True, ""),
    ("^1.2", "1.1.0", Health.SERVING, False, "no serving instance of 'users' has a version"),
    ("", "0.1.0", Health.SERVING, True, ""),
    ("~1.2.0", "1.2.5", Health.NOT_SERVING, False, "no serving instance"),
    ("~1.2.0", "1.2.5", Health.UNREACHABLE, False, "no serving instance"),
    ("1.x", "2.0.0", Health.SERVING, False, "1.x"),
    (">>1", "1.0.0", Health.SERVING, False, "invalid version range"),
]


@pytest.mark.parametrize(
    ("version_range", "version", "health", "satisfied", "reason"),
    DEPENDENCY_CASES,
    ids=["in-range", "below-caret", "any-version", "not-serving", "unreachable",
         "major-too-new", "bad-range"],
)  # fmt: skip
def test_dependency_is_satisfied_by_a_serving_instance_with_an_accepted_version(
    version_range: str, version: str, health: Health, satisfied: bool, reason: str
) -> None:
    consumer = ServiceSpec("mail", "1.0.0", ("m.v1.Mail",), dependencies=(
        Dependency(USERS, version_range),
    ))  # fmt: skip

    [check] = check_dependencies(consumer, [_users(version, health)])

    assert check.satisfied is satisfied
    assert reason in check.reason
    if satisfied:
        assert check.reason == ""


def test_dependency_on_an_unregistered_service_names_it() -> None:
    consumer = ServiceSpec("mail", "1.0.0", ("m.v1.Mail",), dependencies=(Dependency(USERS),))

    [check] = check_dependencies(consumer, [])

    assert not check.satisfied
    assert check.found_version == ""
    assert USERS in check.reason
