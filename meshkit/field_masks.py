"""Which fields an update changes, from its ``update_mask`` (AIP-134).

With a mask, the fields it names: ``*`` stands for every updatable one, a field that
cannot change is refused (or quietly passed over, where the API has promised to ignore
it), anything else is refused naming the updatable fields. Without a mask, the fields the
request populates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from meshkit.errors import invalid_field

__all__ = ["updated_fields"]


def updated_fields(
    paths: Sequence[str],
    populated: Mapping[str, bool],
    *,
    updatable: Sequence[str],
    fixed: Iterable[str] = (),
    ignored: Iterable[str] = (),
) -> frozenset[str]:
    """The updatable fields an update changes.

    Args:
        paths: The request's ``update_mask.paths``.
        populated: Whether the request's resource sets each updatable field; what an
            update without a mask changes.
        updatable: The fields an update may change, in the order error messages name them.
        fixed: Fields that exist and cannot change: naming one is refused as such.
        ignored: Fields the API lets a mask name to no effect (output-only ones, where it
            promised so).

    Raises:
        InvalidArgument: The mask names a field that cannot change or does not exist.
    """
    if not paths:
        return frozenset(name for name, present in populated.items() if present)
    fixed, ignored = frozenset(fixed), frozenset(ignored)
    chosen: set[str] = set()
    for path in paths:
        if path == "*":
            chosen.update(updatable)
        elif path in updatable:
            chosen.add(path)
        elif path in fixed:
            raise invalid_field("update_mask", f"field {path!r} cannot be updated", path=path)
        elif path not in ignored:
            raise invalid_field(
                "update_mask",
                f"unknown field {path!r}; updatable fields are {', '.join(updatable)}",
                path=path,
            )
    return frozenset(chosen)
