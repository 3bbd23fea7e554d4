"""Translation between ``plugmesh.users.v1`` messages and the domain, with validation.

The service module (:mod:`services.users.service`) uses it for requests and responses and
the events module (:mod:`services.users.events`) for event payloads; nothing else in the
plugin sees protobuf. Permissions and roles translate as the toolkit's permission model
does (:mod:`meshkit.permissions.convert`). Validation errors name the field as the caller
spelled it, for example ``user.permissions.rules[2].pattern``, so every function takes
the path of the message it reads.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from meshkit.errors import invalid_field
from meshkit.paging import filters_digest
from meshkit.permissions import Decision, Role
from meshkit.permissions.convert import (
    matched_rule_to_proto,
    policy_to_proto,
    reason_to_proto,
    role_to_proto,
)
from plugmesh.users.v1 import users_pb2
from services.users.model import (
    MAX_DISPLAY_NAME_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_USER_ID_LENGTH,
    User,
    email_key,
)

__all__ = [
    "decision_to_proto",
    "filters_fingerprint",
    "user_to_proto",
    "valid_display_name",
    "valid_email",
    "valid_user_id",
]


# --- domain → protobuf ---------------------------------------------------------------


def user_to_proto(user: User) -> users_pb2.User:
    """The wire form of ``user``, output-only fields included."""
    message = users_pb2.User(
        user_id=user.user_id,
        email=user.email,
        display_name=user.display_name,
        role=role_to_proto(user.role),
        permissions=policy_to_proto(user.policy),
        create_time=_timestamp(user.create_time),
        update_time=_timestamp(user.update_time),
        revision=user.revision,
        etag=user.etag,
    )
    if user.last_login_time is not None:
        message.last_login_time.CopyFrom(_timestamp(user.last_login_time))
    return message


def decision_to_proto(decision: Decision, revision: int) -> users_pb2.CheckPermissionResponse:
    """A CheckPermission answer for ``decision`` on permissions at ``revision``."""
    return users_pb2.CheckPermissionResponse(
        allowed=decision.allowed,
        reason=reason_to_proto(decision.reason),
        matched_rule=matched_rule_to_proto(decision),
        policy_revision=revision,
    )


def _timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(time)
    return stamp


# --- protobuf → domain, validated ----------------------------------------------------


def valid_user_id(value: str, field: str) -> str:
    """``value`` if it is a user id: 1 to 128 characters, no ``/``, no control characters."""
    if not value:
        raise invalid_field(field, "is required")
    if len(value) > MAX_USER_ID_LENGTH:
        raise invalid_field(field, f"must be at most {MAX_USER_ID_LENGTH} characters")
    if "/" in value:
        raise invalid_field(field, 'must not contain "/"')
    if not value.isprintable():
        raise invalid_field(field, "must not contain control characters")
    return value


def valid_email(value: str, field: str) -> str:
    """``value`` stripped, if it is empty or looks like an email address."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > MAX_EMAIL_LENGTH:
        raise invalid_field(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or not value.isprintable() or " " in value:
        raise invalid_field(field, f"{value!r} is not an email address")
    return value


def valid_display_name(value: str, field: str) -> str:
    """``value`` if it is short enough to be a name."""
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise invalid_field(field, f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters")
    return value


def filters_fingerprint(role: Role | None, email: str | None) -> str:
    """The digest of a ListUsers's filters its page tokens carry (emails compare
    case-insensitively)."""
    return filters_digest(role.value if role else "", email_key(email or "") or "")
