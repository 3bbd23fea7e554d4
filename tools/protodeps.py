"""Copy the third-party protos that `protos/` imports out of installed packages.

buf needs `google/api/*.proto` and `google/rpc/*.proto` as source; they ship inside the
googleapis-common-protos wheel, so they are copied into `.build/protodeps` at build time
instead of being committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import google.api

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / ".build" / "protodeps"
PACKAGES = ("api", "rpc")


def main() -> None:
    google_dir = Path(next(iter(google.api.__path__))).parent
    for package in PACKAGES:
        target = DEST / "google" / package
        target.mkdir(parents=True, exist_ok=True)
        for proto in sorted((google_dir / package).glob("*.proto")):
            shutil.copyfile(proto, target / proto.name)


if __name__ == "__main__":
    main()
