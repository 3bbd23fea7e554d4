"""The credentials the secrets guard recognises: a table of :class:`Detector`, and
:func:`scan` of a text.

Each detector is a pattern of the credential's published shape (prefixes, lengths,
alphabets), anchored so that it does not fire inside a longer word, and, where the
shape has one, a check (a plugmesh token's checksum, a JWT's decodable header). A near
miss (one character short, a wrong prefix, a broken checksum) is not a finding: a guard
that cries wolf gets switched off.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meshkit import token_format

__all__ = ["DETECTORS", "Detector", "Finding", "scan"]


@dataclass(frozen=True)
class Detector:
    """One kind of credential.

    Attributes:
        name: Stable, kebab-case ("aws-access-key-id").
        description: What it finds.
        pattern: Its shape; the credential is group ``secret`` when there is one, else the
            whole match.
        check: Whether a match really is one (a checksum, a decodable part).
    """

    name: str
    description: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] = lambda _: True


@dataclass(frozen=True)
class Finding:
    """A credential in a text: which detector, and where (code points, end exclusive)."""

    detector: str
    start: int
    end: int


def _jwt_header(candidate: str) -> bool:
    """Whether the first part of a JWT candidate decodes to a JSON object with ``alg``."""
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


# Not inside a longer run of token characters, on either side.
_B = r"(?<![0-9A-Za-z_\-])"
_E = r"(?![0-9A-Za-z_\-])"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "plugmesh-machine-token",
        "a plugmesh machine token (pmk_…, its checksum verified)",
        token_format.CANDIDATE,
        token_format.checksum_matches,
    ),
    Detector(
        "aws-access-key-id",
        "an AWS access key id (AKIA… or ASIA…, 20 characters)",
        re.compile(rf"{_B}(?:AKIA|ASIA)[0-9A-Z]{{16}}{_E}"),
    ),
    Detector(
        "aws-secret-access-key",
        "an AWS secret access key, where it is named (aws_secret_access_key = …)",
        re.compile(
            r"(?i:aws_?secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
            r"(?P<secret>(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))"
        ),
    ),
    Detector(
        "github-token",
        "a GitHub token (ghp_, gho_, ghu_, ghs_ or ghr_ and 36 characters)",
        re.compile(rf"{_B}gh[pousr]_[A-Za-z0-9]{{36}}{_E}"),
    ),
    Detector(
        "github-fine-grained-token",
        "a GitHub fine-grained personal access token (github_pat_…)",
        re.compile(rf"{_B}github_pat_[A-Za-z0-9]{{22}}_[A-Za-z0-9]{{59}}{_E}"),
    ),
    Detector(
        "gitlab-token",
        "a GitLab personal access token (glpat- and 20 characters)",
        re.compile(rf"{_B}glpat-[A-Za-z0-9_\-]{{20}}{_E}"),
    ),
    Detector(
        "google-api-key",
        "a Google API key (AIza and 35 characters)",
        re.compile(rf"{_B}AIza[0-9A-Za-z_\-]{{35}}{_E}"),
    ),
    Detector(
        "slack-token",
        "a Slack token (xoxb-, xoxp-, xoxa-, xoxr- or xoxs-)",
        re.compile(rf"{_B}xox[abprs]-(?:[0-9]{{10,13}}-){{1,2}}[0-9A-Za-z\-]{{24,34}}{_E}"),
    ),
    Detector(
        "stripe-secret-key",
        "a Stripe live secret or restricted key (sk_live_, rk_live_)",
        re.compile(rf"{_B}(?:sk|rk)_live_[0-9A-Za-z]{{24,99}}{_E}"),
    ),
    Detector(
        "anthropic-api-key",
        "an Anthropic API key (sk-ant-…)",
        re.compile(rf"{_B}sk-ant-(?:api|admin)[0-9]{{2}}-[A-Za-z0-9_\-]{{80,120}}{_E}"),
    ),
    Detector(
        "openai-api-key",
        "an OpenAI API key (sk-proj-…, sk-svcacct-…)",
        re.compile(rf"{_B}sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{{40,200}}{_E}"),
    ),
    Detector(
        "private-key",
        "a PEM private key block (RSA, EC, DSA, OpenSSH, PKCS #8, encrypted)",
        re.compile(
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
            r"[\s\S]*?-----END (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"
        ),
    ),
    Detector(
        "jwt",
        "a JSON Web Token (three base64url parts, the first a JSON header with alg)",
        re.compile(
            rf"{_B}eyJ[A-Za-z0-9_\-]{{8,}}\.eyJ[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]{{16,}}{_E}"
        ),
        _jwt_header,
    ),
)


def scan(text: str) -> list[Finding]:
    """Every credential in ``text``, in the order they start (overlaps: the first
    detector of the table wins)."""
    found: list[Finding] = []
    for detector in DETECTORS:
        for start, end in _matches(detector, text):
            if not any(f.start < end and start < f.end for f in found):
                found.append(Finding(detector.name, start, end))
    return sorted(found, key=lambda finding: finding.start)


def _matches(detector: Detector, text: str) -> Iterator[tuple[int, int]]:
    for match in detector.pattern.finditer(text):
        group = "secret" if "secret" in detector.pattern.groupindex else 0
        start, end = match.span(group)
        if detector.check(text[start:end]):
            yield start, end
