"""Picking instances: round-robin, and a retry elsewhere that takes no turn."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from meshkit.picker import Deadline, Picker


@dataclass(frozen=True)
class At:
    address: str


SERVING = {"echo": (At("a:1"), At("b:1"), At("c:1"))}


def picker() -> Picker[At]:
    return Picker(lambda key: SERVING.get(key, ()))


def failure(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "failed")


def addresses(chosen: list[At | None]) -> list[str | None]:
    return [c.address if c else None for c in chosen]


def test_calls_take_turns_over_the_serving_instances() -> None:
    choose = picker()

    chosen = [choose.pick("echo") for _ in range(4)]

    assert addresses(chosen) == ["a:1", "b:1", "c:1", "a:1"]
    assert choose.pick("nothing") is None


def test_a_retry_goes_to_another_instance_and_takes_no_turn() -> None:
    choose = picker()
    first = choose.pick("echo")
    assert first is not None

    again = choose.retry(
        "echo", first, failure(grpc.StatusCode.UNAVAILABLE), Deadline(5), method="/E/M"
    )

    assert again is not None
    assert again.address != first.address
    assert addresses([choose.pick("echo")]) == ["b:1"], "the next call still gets its turn"


@pytest.mark.parametrize(
    ("code", "timeout_seconds", "key"),
    [
        (grpc.StatusCode.INTERNAL, 5.0, "echo"),
        (grpc.StatusCode.UNAVAILABLE, 0.0, "echo"),
        (grpc.StatusCode.UNAVAILABLE, None, "alone"),
    ],
    ids=["not-unavailable", "no-time-left", "no-other-instance"],
)
def test_the_failure_stands_when_a_retry_cannot_help(
    code: grpc.StatusCode, timeout_seconds: float | None, key: str
) -> None:
    serving = {"echo": SERVING["echo"], "alone": (At("a:1"),)}
    choose = Picker(lambda name: serving[name])

    again = choose.retry(key, At("a:1"), failure(code), Deadline(timeout_seconds), method="/E/M")

    assert again is None


def test_turns_of_services_that_left_are_forgotten() -> None:
    choose = picker()
    choose.pick("echo")

    choose.keep(())

    assert addresses([choose.pick("echo")]) == ["a:1"]
