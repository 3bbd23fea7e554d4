"""Compiling test protos with ``grpc_tools.protoc``, comments included."""

from __future__ import annotations

import tempfile
from pathlib import Path

import google.api
from google.protobuf import descriptor_pb2
from grpc_tools import protoc


def compiled(include: Path, file: str) -> descriptor_pb2.FileDescriptorSet:
    """``file`` (relative to ``include``) and everything it imports, imports first, with
    their source info; ``google/api`` and the well-known types come from their packages."""
    site = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "set.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{include}",
                f"-I{site}",
                f"-I{well_known}",
                "--include_imports",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                str(include / file),
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed on {file} with exit code {code}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
