"""Permissions and roles on the wire (``plugmesh.users.v1``) and back, with validation.

The users and the machine-users contracts both carry ``plugmesh.users.v1.Permissions``
and ``Role``, so one translation serves both, and the rule grammar's errors read the
same for people and machines. Errors name the field as the caller spelled it, for
example ``user.permissions.rules[2].pattern``, so every reader takes the path of the
message it reads.
"""

from __future__ import annotations

from meshkit.errors import invalid_field
from meshkit.permissions import (
    MAX_RULES,
    Decision,
    Effect,
    PatternError,
    Policy,
    Reason,
    Role,
    Rule,
    validate_pattern,
)
from plugmesh.users.v1 import users_pb2

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "matched_rule_to_proto",
    "policy_from_proto",
    "policy_to_proto",
    "reason_to_proto",
    "role_from_proto",
    "role_to_proto",
    "rule_to_proto",
]

MAX_DESCRIPTION_LENGTH = 1024

_ROLES = {Role.USER: users_pb2.ROLE_USER, Role.ADMIN: users_pb2.ROLE_ADMIN}
_EFFECTS = {Effect.ALLOW: users_pb2.EFFECT_ALLOW, Effect.DENY: users_pb2.EFFECT_DENY}
_EFFECTS_FROM_PROTO = {wire: effect for effect, wire in _EFFECTS.items()}
_REASONS = {
    Reason.RULE: users_pb2.DECISION_REASON_RULE,
    Reason.ADMIN: users_pb2.DECISION_REASON_ADMIN,
    Reason.DEFAULT_DENY: users_pb2.DECISION_REASON_DEFAULT_DENY,
}


def policy_to_proto(policy: Policy) -> users_pb2.Permissions:
    """The wire form of a principal's permissions."""
    return users_pb2.Permissions(
        admin=policy.admin, rules=[rule_to_proto(rule) for rule in policy.rules]
    )


def reason_to_proto(reason: Reason) -> users_pb2.DecisionReason.ValueType:
    """The wire value of what decided a check."""
    return _REASONS[reason]


def matched_rule_to_proto(decision: Decision) -> users_pb2.MatchedRule | None:
    """The rule that decided ``decision`` and its position; None when no rule did (every
    answer explaining a decision carries it, whoever's permissions were checked)."""
    if decision.rule is None or decision.rule_index is None:
        return None
    return users_pb2.MatchedRule(index=decision.rule_index, rule=rule_to_proto(decision.rule))


def rule_to_proto(rule: Rule) -> users_pb2.PermissionRule:
    """The wire form of one rule."""
    return users_pb2.PermissionRule(
        effect=_EFFECTS[rule.effect], pattern=rule.pattern, description=rule.description
    )


def role_to_proto(role: Role) -> users_pb2.Role.ValueType:
    """The wire value of ``role``."""
    return _ROLES[role]


def role_from_proto(value: int, field: str) -> Role:
    """The role ``value`` stands for; ROLE_UNSPECIFIED is ROLE_USER.

    Raises:
        InvalidArgument: ``value`` is no Role.
    """
    if value in (users_pb2.ROLE_UNSPECIFIED, users_pb2.ROLE_USER):
        return Role.USER
    if value == users_pb2.ROLE_ADMIN:
        return Role.ADMIN
    raise invalid_field(field, f"{value} is not a Role")


def policy_from_proto(message: users_pb2.Permissions, field: str) -> Policy:
    """The domain permissions of ``message``, every rule checked.

    Raises:
        InvalidArgument: A rule has no effect, a malformed pattern (the error names the
            rule's index and its pattern) or a description that is too long.
    """
    if len(message.rules) > MAX_RULES:
        raise invalid_field(
            f"{field}.rules", f"has {len(message.rules)} rules; at most {MAX_RULES}"
        )
    rules: list[Rule] = []
    for index, rule in enumerate(message.rules):
        where = f"{field}.rules[{index}]"
        effect = _EFFECTS_FROM_PROTO.get(rule.effect)
        if effect is None:
            raise invalid_field(f"{where}.effect", "must be EFFECT_ALLOW or EFFECT_DENY")
        try:
            validate_pattern(rule.pattern)
        except PatternError as exc:
            raise invalid_field(
                f"{where}.pattern", str(exc), pattern=rule.pattern, index=str(index)
            ) from exc
        if len(rule.description) > MAX_DESCRIPTION_LENGTH:
            raise invalid_field(
                f"{where}.description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters"
            )
        rules.append(Rule(effect, rule.pattern, rule.description))
    return Policy(admin=message.admin, rules=tuple(rules))
