"""SQL conditions for the domain's filters and reader rights, over ``audit_entries``."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_

from services.audit.model import ActorType, EntryFilter, Outcome, Visibility
from services.audit.tables import EntryRow, naive

__all__ = ["action_glob", "matching", "visible"]


def matching(where: EntryFilter, dialect: str) -> list[ColumnElement[bool]]:
    """The conditions of every criterion of ``where`` that is set."""
    conditions: list[ColumnElement[bool]] = []
    if where.user_id:
        conditions.append(EntryRow.actor_id == where.user_id)
    if where.actor_type is not ActorType.UNSPECIFIED:
        conditions.append(EntryRow.actor_type == where.actor_type.value)
    if where.action:
        conditions.append(action_glob(where.action, dialect))
    if where.resource:
        conditions.append(EntryRow.resource == where.resource)
    if where.outcome is not Outcome.UNSPECIFIED:
        conditions.append(EntryRow.outcome == where.outcome.value)
    if where.start_time is not None:
        conditions.append(EntryRow.occur_time >= naive(where.start_time))
    if where.end_time is not None:
        conditions.append(EntryRow.occur_time < naive(where.end_time))
    return conditions


def action_glob(pattern: str, dialect: str) -> ColumnElement[bool]:
    """``action`` matches ``pattern``, where ``*`` is any run; case-sensitive everywhere."""
    if "*" not in pattern:
        return EntryRow.action == pattern
    if dialect == "sqlite":
        # SQLite's LIKE ignores case; GLOB does not. Escape GLOB's other specials.
        escaped = "".join(f"[{c}]" if c in "?[" else c for c in pattern)
        return EntryRow.action.op("GLOB")(escaped)
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return EntryRow.action.like(escaped.replace("*", "%"), escape="\\")


def visible(visibility: Visibility) -> list[ColumnElement[bool]]:
    """The condition for entries the reader may see (none for an admin)."""
    if visibility.everything:
        return []
    allowed: list[ColumnElement[bool]] = []
    if visibility.actor is not None:
        allowed.append(
            and_(
                EntryRow.actor_type == visibility.actor.type.value,
                EntryRow.actor_id == visibility.actor.id,
            )
        )
    if visibility.resources:
        allowed.append(EntryRow.resource.in_(visibility.resources))
    return [or_(*allowed)] if allowed else [false()]
