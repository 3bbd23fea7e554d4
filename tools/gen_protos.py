"""Generate Python code, with typed stubs, from `protos/` into `gen/`.

Beside the code, `gen/plugmesh/descriptors.binpb` is a FileDescriptorSet of the files of
`protos/` with their source info: the comments, which generated code does not keep. The
toolkit sends them to the registry with a plugin's descriptors (meshkit/descriptors.py),
so the gateway can describe operations, tools and fields with them.

`--check` generates into a scratch directory and fails when `gen/` differs, so stale
generated code is caught by `make lint`.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEPS = ROOT / ".build" / "protodeps"
GEN = ROOT / "gen"
#: The descriptor set with source info, relative to the output directory.
DESCRIPTORS = Path("plugmesh") / "descriptors.binpb"
BIN = Path(sys.executable).parent


def generate(out: Path) -> None:
    """Run protoc over every file under protos/ and write the results to `out`."""
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    wkt = Path(next(iter(grpc_tools.__path__))) / "_proto"
    (out / DESCRIPTORS).parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{DEPS}",
        f"-I{wkt}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        "--include_source_info",
        f"--descriptor_set_out={out / DESCRIPTORS}",
        *files,
    ]
    # protoc-gen-mypy reports every file it writes on stderr; show its output only on failure.
    done = subprocess.run(command, cwd=PROTOS, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(done.returncode)
    for directory in [out / "plugmesh", *(p for p in (out / "plugmesh").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
        (directory / "py.typed").touch()


def differences(left: Path, right: Path) -> list[str]:
    """Return the relative paths that differ between two directory trees."""
    found: list[str] = []
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found += [f"only in gen/: {n}" for n in comparison.left_only]
    found += [f"missing from gen/: {n}" for n in comparison.right_only]
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    found += [f"stale: {n}" for n in mismatch + errors]
    for sub in comparison.common_dirs:
        found += [f"{sub}/{d}" for d in differences(left / sub, right / sub)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when gen/ is stale")
    args = parser.parse_args()
    if not args.check:
        shutil.rmtree(GEN / "plugmesh", ignore_errors=True)
        generate(GEN)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        generate(Path(scratch))
        stale = differences(GEN / "plugmesh", Path(scratch) / "plugmesh")
    for line in stale:
        print(f"gen/plugmesh/{line}", file=sys.stderr)
    if stale:
        print("generated code is stale: run `make gen`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
