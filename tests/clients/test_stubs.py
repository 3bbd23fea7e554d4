"""`make stubs` generates Node/TypeScript and C++ stubs for every service in protos/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.clients.programs import ROOT, build

PROTOS = ROOT / "protos"
STUBS = ROOT / ".build" / "stubs"
SERVICE = re.compile(r"^service (\w+) \{", re.MULTILINE)


@pytest.fixture(scope="session")
def stubs() -> Path:
    build("stubs", "node", "npm", "protoc", "grpc_cpp_plugin")
    return STUBS


@pytest.mark.parametrize(
    "proto",
    [
        pytest.param(path, id=str(path.relative_to(PROTOS)))
        for path in sorted(PROTOS.rglob("*.proto"))
    ],
)
def test_make_stubs_generates_every_message_file_and_service_for_node_and_cpp(
    stubs: Path, proto: Path
) -> None:
    name = proto.relative_to(PROTOS).with_suffix("")
    node = (stubs / "node" / f"{name}_pb.ts").read_text()
    cpp_messages = stubs / "cpp" / f"{name}.pb.h"
    cpp_services = (stubs / "cpp" / f"{name}.grpc.pb.h").read_text()
    assert cpp_messages.is_file()
    for service in SERVICE.findall(proto.read_text()):
        assert f"export const {service}: GenService<" in node
        assert f"class {service} final" in cpp_services
