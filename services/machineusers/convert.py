"""Translation between ``plugmesh.machineusers.v1`` messages and the domain, with validation.

Only the service and events modules use it. Permissions and roles translate as the
toolkit's permission model does (:mod:`meshkit.permissions.convert`), so the rule grammar
and its error messages are the same for people and machines. Errors name the field as the caller
spelled it, for example ``machine_user.permissions.rules[2].pattern``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection

from google.protobuf import duration_pb2, timestamp_pb2

from meshkit.errors import invalid_field
from meshkit.permissions import Decision, Policy
from meshkit.permissions.convert import (
    matched_rule_to_proto,
    policy_from_proto,
    policy_to_proto,
    reason_to_proto,
    role_from_proto,
    role_to_proto,
)
from plugmesh.machineusers.v1 import machineusers_pb2
from services.machineusers.model import (
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    InvalidReason,
    MachineUser,
    MachineUserChanges,
    NewMachineUser,
    Validation,
)

__all__ = [
    "changes_of",
    "decision_to_proto",
    "duration",
    "machine_user_to_proto",
    "new_machine_user",
    "timestamp",
    "validation_to_proto",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REASONS = {
    InvalidReason.MALFORMED: machineusers_pb2.INVALID_REASON_MALFORMED,
    InvalidReason.UNKNOWN: machineusers_pb2.INVALID_REASON_UNKNOWN,
    InvalidReason.EXPIRED: machineusers_pb2.INVALID_REASON_EXPIRED,
}


# --- domain → protobuf ---------------------------------------------------------------


def machine_user_to_proto(user: MachineUser) -> machineusers_pb2.MachineUser:
    """The wire form of ``user``: output-only fields included, never a secret."""
    message = machineusers_pb2.MachineUser(
        machine_user_id=user.machine_user_id,
        name=user.name,
        description=user.description,
        role=role_to_proto(user.role),
        permissions=policy_to_proto(user.policy),
        create_time=timestamp(user.create_time),
        creator_id=user.creator_id,
        etag=user.etag,
    )
    if user.expire_time is not None:
        message.expire_time.CopyFrom(timestamp(user.expire_time))
    if user.last_used_time is not None:
        message.last_used_time.CopyFrom(timestamp(user.last_used_time))
    info = message.token_info
    info.prefix = user.token.prefix
    info.last_four = user.token.last_four
    info.issue_time.CopyFrom(timestamp(user.token.issue_time))
    if user.token.previous_token_expire_time is not None:
        info.previous_token_expire_time.CopyFrom(timestamp(user.token.previous_token_expire_time))
    return message


def validation_to_proto(validation: Validation) -> machineusers_pb2.ValidateTokenResponse:
    """The ValidateToken answer for ``validation``."""
    if validation.machine_user is None:
        reason = validation.reason or InvalidReason.UNKNOWN
        return machineusers_pb2.ValidateTokenResponse(valid=False, invalid_reason=_REASONS[reason])
    response = machineusers_pb2.ValidateTokenResponse(
        valid=True, machine_user=machine_user_to_proto(validation.machine_user)
    )
    if validation.expire_time is not None:
        response.expire_time.CopyFrom(timestamp(validation.expire_time))
    return response


def decision_to_proto(decision: Decision) -> machineusers_pb2.CheckMachineUserPermissionResponse:
    """The CheckMachineUserPermission answer for ``decision``, shaped as the users
    plugin's CheckPermission answer."""
    return machineusers_pb2.CheckMachineUserPermissionResponse(
        allowed=decision.allowed,
        reason=reason_to_proto(decision.reason),
        matched_rule=matched_rule_to_proto(decision),
    )


def timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    """``time`` as a Timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(time)
    return stamp


# --- protobuf → domain, validated ----------------------------------------------------


def new_machine_user(message: machineusers_pb2.MachineUser, field: str) -> NewMachineUser:
    """The machine user a CreateMachineUser asks for; output-only fields are ignored.

    Raises:
        InvalidArgument: A field is missing or malformed; the error names it.
    """
    name = _valid_name(message.name, f"{field}.name")
    description = _valid_description(message.description, f"{field}.description")
    expire_time: dt.datetime | None = None
    ttl: dt.timedelta | None = None
    which = message.WhichOneof("expiration")
    if which == "expire_time":
        try:
            expire_time = message.expire_time.ToDatetime(tzinfo=dt.UTC)
        except (OverflowError, ValueError):
            raise invalid_field(f"{field}.expire_time", "is out of range") from None
    elif which == "ttl":
        ttl = duration(message.ttl, f"{field}.ttl")
    return NewMachineUser(
        name=name,
        description=description,
        role=role_from_proto(message.role, f"{field}.role"),
        policy=(
            policy_from_proto(message.permissions, f"{field}.permissions")
            if message.HasField("permissions")
            else Policy()
        ),
        expire_time=expire_time,
        ttl=ttl,
    )


def changes_of(
    message: machineusers_pb2.MachineUser, paths: Collection[str], field: str
) -> MachineUserChanges:
    """The changes an UpdateMachineUser asks for: the fields in ``paths`` (API names),
    validated as on create.

    Raises:
        InvalidArgument: A field to change is malformed; the error names it.
    """
    return MachineUserChanges(
        name=_valid_name(message.name, f"{field}.name") if "name" in paths else None,
        description=(
            _valid_description(message.description, f"{field}.description")
            if "description" in paths
            else None
        ),
        role=role_from_proto(message.role, f"{field}.role") if "role" in paths else None,
        policy=(
            policy_from_proto(message.permissions, f"{field}.permissions")
            if "permissions" in paths
            else None
        ),
    )


def _valid_name(value: str, field: str) -> str:
    name = value.strip()
    if not name:
        raise invalid_field(field, "is required")
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise invalid_field(
            field,
            f"must be 1 to {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def _valid_description(value: str, field: str) -> str:
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise invalid_field(field, f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    return value


def duration(message: duration_pb2.Duration, field: str) -> dt.timedelta:
    """A Duration as a timedelta.

    Raises:
        InvalidArgument: It is not a valid, positive duration.
    """
    if message.seconds < 0 or message.nanos < 0 or (message.seconds == 0 and message.nanos == 0):
        raise invalid_field(field, "must be a positive duration")
    try:
        return message.ToTimedelta()
    except (OverflowError, ValueError):
        raise invalid_field(field, "is out of range") from None
