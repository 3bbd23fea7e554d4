"""Each detector finds its credential of real shape, wherever it stands in a text, and
none of them fires on a near miss."""

from __future__ import annotations

import pytest

from services.secretsguard.detectors import DETECTORS, scan
from tests.services.secretsguard.samples import found, near_misses

FOUND = found()
MISSES = near_misses()


def test_every_detector_has_a_sample() -> None:
    assert sorted(FOUND) == sorted(d.name for d in DETECTORS)


@pytest.mark.parametrize("detector", sorted(FOUND))
def test_a_credential_alone_is_found_by_its_detector(detector: str) -> None:
    sample = FOUND[detector]

    (finding,) = scan(sample)

    assert finding.detector == detector
    if detector != "aws-secret-access-key":  # the key, not its name: see below
        assert sample[finding.start : finding.end] == sample.strip()


@pytest.mark.parametrize("detector", sorted(FOUND))
def test_a_credential_inside_a_sentence_is_found_where_it_stands(detector: str) -> None:
    sample = FOUND[detector]
    text = f'please use "{sample}" for the deploy'

    (finding,) = scan(text)

    assert finding.detector == detector
    assert finding.start >= len('please use "')
    assert finding.end <= len(text) - len('" for the deploy')


@pytest.mark.parametrize("miss", sorted(MISSES))
def test_a_near_miss_is_not_a_credential(miss: str) -> None:
    assert scan(f"value: {MISSES[miss]} end") == []


def test_findings_come_in_the_order_they_stand_in_the_text() -> None:
    text = f"{FOUND['github-token']} then {FOUND['aws-access-key-id']}"

    assert [f.detector for f in scan(text)] == ["github-token", "aws-access-key-id"]


def test_the_aws_secret_finding_is_the_key_not_its_name() -> None:
    text = FOUND["aws-secret-access-key"]

    (finding,) = scan(text)

    assert text[finding.start : finding.end] == text.split("= ")[1]
