"""The files a plugin registers carry their comments: plugmesh's own from the descriptor
set ``make gen`` ships, a plugin's own from the set it passes."""

from __future__ import annotations

import logging

import pytest
from google.protobuf import descriptor_pb2

from meshkit.descriptors import file_descriptor_set, shipped_source_info
from plugmesh.users.v1 import users_pb2

USERS = users_pb2.DESCRIPTOR.services_by_name["UserService"]
USERS_FILE = "plugmesh/users/v1/users.proto"
# The path of UserService.GetUser in its file: service 0, method 1.
GET_USER = [6, 0, 2, 1]


def comment_at(files: descriptor_pb2.FileDescriptorSet, name: str, path: list[int]) -> str:
    [file] = [file for file in files.file if file.name == name]
    found = [loc.leading_comments for loc in file.source_code_info.location if loc.path == path]
    return found[0] if found else ""


def users_source(comment: str, *, rename: str = "") -> descriptor_pb2.FileDescriptorSet:
    """plugmesh's users.proto with GetUser's comment replaced, and a message renamed."""
    file = descriptor_pb2.FileDescriptorProto()
    file.CopyFrom(shipped_source_info()[USERS_FILE])
    for location in file.source_code_info.location:
        if location.path == GET_USER:
            location.leading_comments = comment
    if rename:
        file.message_type[0].name = rename
    return descriptor_pb2.FileDescriptorSet(file=[file])


def test_plugmeshs_own_files_carry_their_comments_and_imports_from_elsewhere_none() -> None:
    files = file_descriptor_set([USERS])

    assert USERS.methods[1].name == "GetUser"
    assert comment_at(files, USERS_FILE, GET_USER) == (
        " Gets one user. Callers who are not admins may only get themselves.\n"
    )
    [timestamp] = [file for file in files.file if file.name == "google/protobuf/timestamp.proto"]
    assert not timestamp.HasField("source_code_info")


def test_a_plugins_own_source_info_is_taken_over_the_shipped_one() -> None:
    files = file_descriptor_set([USERS], source_info=users_source(" Gets a user.\n"))

    assert comment_at(files, USERS_FILE, GET_USER) == " Gets a user.\n"


def test_source_info_of_another_version_of_the_file_is_not_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stale = users_source(" Gets a user.\n", rename="Renamed")

    with caplog.at_level(logging.WARNING, logger="meshkit.descriptors"):
        files = file_descriptor_set([USERS], source_info=stale)

    [users] = [file for file in files.file if file.name == USERS_FILE]
    assert not users.HasField("source_code_info")
    assert [record.file for record in caplog.records] == [USERS_FILE]  # type: ignore[attr-defined]
