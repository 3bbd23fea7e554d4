"""Translation between ``plugmesh.users.v1`` messages and the domain, with validation.

The service module (:mod:`services.users.service`) uses it for requests and responses and
the events module (:mod:`services.users.events`) for event payloads; nothing else in the
plugin sees protobuf. Validation errors name the field as the caller spelled it, for
example ``user.permissions.rules[2].pattern``, so every function takes the path of the
message it reads.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from meshkit.errors import InvalidArgument
from plugmesh.events.v1 import event_pb2
from plugmesh.users.v1 import users_pb2
from services.users.model import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_USER_ID_LENGTH,
    Actor,
    ActorKind,
    Role,
    User,
)
from services.users.permissions import (
    MAX_RULES,
    Decision,
    Effect,
    PatternError,
    Policy,
    Reason,
    Rule,
    validate_pattern,
)

__all__ = [
    "actor_to_proto",
    "decision_to_proto",
    "invalid",
    "policy_from_proto",
    "policy_to_proto",
    "role_from_proto",
    "role_to_proto",
    "user_to_proto",
    "valid_display_name",
    "valid_email",
    "valid_user_id",
]

MAX_DESCRIPTION_LENGTH = 1024

_ROLES = {Role.USER: users_pb2.ROLE_USER, Role.ADMIN: users_pb2.ROLE_ADMIN}
_EFFECTS = {Effect.ALLOW: users_pb2.EFFECT_ALLOW, Effect.DENY: users_pb2.EFFECT_DENY}
_REASONS = {
    Reason.RULE: users_pb2.DECISION_REASON_RULE,
    Reason.ADMIN: users_pb2.DECISION_REASON_ADMIN,
    Reason.DEFAULT_DENY: users_pb2.DECISION_REASON_DEFAULT_DENY,
}
_ACTORS = {
    ActorKind.USER: event_pb2.ACTOR_TYPE_USER,
    ActorKind.MACHINE: event_pb2.ACTOR_TYPE_MACHINE,
    ActorKind.SERVICE: event_pb2.ACTOR_TYPE_SERVICE,
}


def invalid(field: str, message: str, **metadata: str) -> InvalidArgument:
    """An INVALID_ARGUMENT naming ``field``."""
    return InvalidArgument(
        f"{field}: {message}", reason="INVALID_FIELD", metadata={"field": field, **metadata}
    )


# --- domain → protobuf ---------------------------------------------------------------


def user_to_proto(user: User) -> users_pb2.User:
    """The wire form of ``user``, output-only fields included."""
    message = users_pb2.User(
        user_id=user.user_id,
        email=user.email,
        display_name=user.display_name,
        role=_ROLES[user.role],
        permissions=policy_to_proto(user.policy),
        create_time=_timestamp(user.create_time),
        update_time=_timestamp(user.update_time),
        revision=user.revision,
        etag=user.etag,
    )
    if user.last_login_time is not None:
        message.last_login_time.CopyFrom(_timestamp(user.last_login_time))
    return message


def policy_to_proto(policy: Policy) -> users_pb2.Permissions:
    """The wire form of a user's permissions."""
    return users_pb2.Permissions(
        admin=policy.admin, rules=[_rule_to_proto(rule) for rule in policy.rules]
    )


def role_to_proto(role: Role) -> users_pb2.Role.ValueType:
    """The wire value of ``role``."""
    return _ROLES[role]


def decision_to_proto(decision: Decision, revision: int) -> users_pb2.CheckPermissionResponse:
    """A CheckPermission answer for ``decision`` on permissions at ``revision``."""
    response = users_pb2.CheckPermissionResponse(
        allowed=decision.allowed, reason=_REASONS[decision.reason], policy_revision=revision
    )
    if decision.rule is not None and decision.rule_index is not None:
        response.matched_rule.index = decision.rule_index
        response.matched_rule.rule.CopyFrom(_rule_to_proto(decision.rule))
    return response


def actor_to_proto(actor: Actor) -> event_pb2.Actor:
    """The ``Actor`` events carry."""
    return event_pb2.Actor(type=_ACTORS[actor.kind], id=actor.id, display_name=actor.display_name)


def _rule_to_proto(rule: Rule) -> users_pb2.PermissionRule:
    return users_pb2.PermissionRule(
        effect=_EFFECTS[rule.effect], pattern=rule.pattern, description=rule.description
    )


def _timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(time)
    return stamp


# --- protobuf → domain, validated ----------------------------------------------------


def valid_user_id(value: str, field: str) -> str:
    """``value`` if it is a user id: 1 to 128 characters, no ``/``, no control characters."""
    if not value:
        raise invalid(field, "is required")
    if len(value) > MAX_USER_ID_LENGTH:
        raise invalid(field, f"must be at most {MAX_USER_ID_LENGTH} characters")
    if "/" in value:
        raise invalid(field, 'must not contain "/"')
    if not value.isprintable():
        raise invalid(field, "must not contain control characters")
    return value


def valid_email(value: str, field: str) -> str:
    """``value`` stripped, if it is empty or looks like an email address."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > MAX_EMAIL_LENGTH:
        raise invalid(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or not value.isprintable() or " " in value:
        raise invalid(field, f"{value!r} is not an email address")
    return value


def valid_display_name(value: str, field: str) -> str:
    """``value`` if it is short enough to be a name."""
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise invalid(field, f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")
    return value


def role_from_proto(value: int, field: str) -> Role:
    """The role ``value`` stands for; ROLE_UNSPECIFIED is ROLE_USER."""
    if value in (users_pb2.ROLE_UNSPECIFIED, users_pb2.ROLE_USER):
        return Role.USER
    if value == users_pb2.ROLE_ADMIN:
        return Role.ADMIN
    raise invalid(field, f"{value} is not a Role")


def policy_from_proto(message: users_pb2.Permissions, field: str) -> Policy:
    """The domain permissions of ``message``, every rule checked.

    Raises:
        InvalidArgument: A rule has no effect, a malformed pattern (the error names the
            rule's index and its pattern) or a description that is too long.
    """
    if len(message.rules) > MAX_RULES:
        raise invalid(f"{field}.rules", f"has {len(message.rules)} rules; at most {MAX_RULES}")
    rules: list[Rule] = []
    for index, rule in enumerate(message.rules):
        where = f"{field}.rules[{index}]"
        effect = {users_pb2.EFFECT_ALLOW: Effect.ALLOW, users_pb2.EFFECT_DENY: Effect.DENY}.get(
            rule.effect
        )
        if effect is None:
            raise invalid(f"{where}.effect", "must be EFFECT_ALLOW or EFFECT_DENY")
        try:
            validate_pattern(rule.pattern)
        except PatternError as exc:
            raise invalid(
                f"{where}.pattern", str(exc), pattern=rule.pattern, index=str(index)
            ) from exc
        if len(rule.description) > MAX_DESCRIPTION_LENGTH:
            raise invalid(
                f"{where}.description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters"
            )
        rules.append(Rule(effect, rule.pattern, rule.description))
    return Policy(admin=message.admin, rules=tuple(rules))
