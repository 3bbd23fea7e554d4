"""Which fields an update changes, from its mask (meshkit.field_masks)."""

from __future__ import annotations

import pytest

from meshkit.errors import InvalidArgument
from meshkit.field_masks import updated_fields

UPDATABLE = ("name", "description", "role")
POPULATED = {"name": True, "description": False, "role": True}


@pytest.mark.parametrize(
    ("paths", "fields"),
    [
        ((), {"name", "role"}),
        (("description",), {"description"}),
        (("*",), {"name", "description", "role"}),
        (("role", "create_time"), {"role"}),
    ],
    ids=["no-mask-populated", "named", "star", "ignored-output-only"],
)
def test_the_mask_names_the_fields_an_update_changes(
    paths: tuple[str, ...], fields: set[str]
) -> None:
    changed = updated_fields(
        paths, POPULATED, updatable=UPDATABLE, fixed=("id",), ignored=("create_time",)
    )

    assert changed == fields


@pytest.mark.parametrize(
    ("path", "message"),
    [("id", "field 'id' cannot be updated"), ("colour", "unknown field 'colour'")],
    ids=["fixed", "unknown"],
)
def test_a_path_that_cannot_change_is_refused_naming_it(path: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        updated_fields((path,), POPULATED, updatable=UPDATABLE, fixed=("id",))

    assert refused.value.metadata["path"] == path
