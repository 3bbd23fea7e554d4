"""Reading a process's metrics the way Prometheus does: an HTTP GET of ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """One scrape: every sample, by name and labels, and the families it declares.

    ``declared`` holds the sample names the declared families may have (a counter's
    ``_total``, a histogram's ``_bucket``, ``_count`` and ``_sum``, …), samples or not:
    a labelled series that never moved is declared without a sample.
    """

    samples: tuple[tuple[str, dict[str, str], float], ...]
    families: frozenset[str]
    declared: frozenset[str]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and labels.items() <= found.items()
        )

    def has(self, name: str, **labels: str) -> bool:
        """Whether a sample called ``name`` with those labels exists."""
        return any(
            sample == name and labels.items() <= found.items() for sample, found, _ in self.samples
        )


#: The sample names of a family of each type, as suffixes of its name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def parse(text: str) -> Scrape:
    """Parse the Prometheus text format."""
    families = list(text_string_to_metric_families(text))
    return Scrape(
        tuple(
            (sample.name, dict(sample.labels), sample.value)
            for family in families
            for sample in family.samples
        ),
        frozenset(family.name for family in families),
        frozenset(
            family.name + suffix
            for family in families
            for suffix in _SUFFIXES.get(family.type, ("",))
        ),
    )


async def scrape(address: str, path: str = "/metrics") -> Scrape:
    """GET ``http://<address><path>`` and parse it.

    Raises:
        AssertionError: the answer is not 200 in the Prometheus text format.
    """
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"http://{address}{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return parse(response.text)
