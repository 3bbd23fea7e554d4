"""Backoff: exponential delays with jitter, so replicas that failed together spread out."""

from __future__ import annotations

from random import Random

import pytest

from meshkit.registration import Backoff


@pytest.mark.parametrize(
    ("failures", "drawn", "seconds"),
    [
        (1, 0.0, 0.1),
        (1, 0.5, 0.15),
        (3, 0.0, 0.4),
        (3, 0.75, 0.7),
        (10, 0.0, 2.5),
        (10, 0.5, 3.75),
    ],
    ids=["first-least", "first-middle", "third-least", "third-most", "capped-least", "capped"],
)
def test_a_delay_is_drawn_between_half_and_all_of_the_exponential_one(
    failures: int, drawn: float, seconds: float
) -> None:
    backoff = Backoff(initial_seconds=0.2, maximum_seconds=5.0, random=lambda: drawn)

    assert backoff.delay(failures) == pytest.approx(seconds)


def test_replicas_that_failed_together_wait_different_times() -> None:
    # Each replica's generator, seeded differently (by default each seeds from the system).
    delays = {Backoff(random=Random(replica).random).delay(4) for replica in range(5)}

    assert len(delays) > 1
    assert all(0.8 <= delay <= 1.6 for delay in delays)
