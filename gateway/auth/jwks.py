"""The signing keys of an OpenID Connect issuer: fetched, cached and kept fresh.

::

    keys = IssuerKeys("https://idp.example", algorithms=("RS256", "ES256", "EdDSA"), ...)
    await keys.start()               # fetches in the background; never waits for the issuer
    key = await keys.key("kid-1")    # IssuerKey: the public key and its algorithms
    key = keys.sole_key("RS256")     # for a JWT naming no kid: the one key of its alg
    await keys.close()

The issuer's discovery document (``<issuer>/.well-known/openid-configuration``) names
its ``jwks_uri``; its ``issuer`` must be the configured one, character for character
(OpenID Connect Discovery §4.3). The JWKS is fetched at start, again every
``refresh_seconds``, and after a failure again and again with a backoff. A request that
names a ``kid`` the cache does not hold triggers one more fetch, at most one every
``min_refresh_seconds`` for the whole gateway (an attacker's made-up kids cannot make the
gateway hammer the issuer); requests that arrive during a fetch wait for it and share it.
No request ever waits on the network otherwise.

A key is kept when it is for signatures (``use`` absent or ``sig``) and its type allows
one of the configured algorithms: RSA keys the RS and PS families, EC keys the one
algorithm of their curve, Ed25519 keys EdDSA; a key's own ``alg``, when it has one,
narrows that to itself. So the key decides the algorithm, never the token: an ``alg``
of ``none`` or HS256 is no algorithm of any key. A fetch replaces the whole set, so a key
the issuer withdrew stops verifying at the next refresh.

A ``kid`` is optional in a JWKS and in a JWT (RFC 7517 §4.5, RFC 7515 §4.1.4): an issuer
with one signing key may name none. A JWT without one is verified with the issuer's only
key that signs with the JWT's algorithm, and refused when the issuer has several (which
one signed it cannot be known without trying each, which an attacker could make costly).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt

from gateway.auth.errors import AuthFailed, AuthUnavailable
from meshkit.registration import Backoff
from meshkit.tasks import cancel_and_wait
from plugmesh.events.v1 import auth_events_pb2 as events

__all__ = ["IssuerKey", "IssuerKeys"]

log = logging.getLogger(__name__)

_DISCOVERY = "/.well-known/openid-configuration"
_MAX_DOCUMENT_BYTES = 1 << 20
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: What each key type (and curve) may sign with.
_FAMILIES: Mapping[tuple[str, str | None], frozenset[str]] = {
    ("RSA", None): _RSA,
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
}


@dataclass(frozen=True)
class IssuerKey:
    """One public key of the issuer.

    Attributes:
        kid: Its key id; "" when the issuer names none.
        algorithms: The algorithms a token signed with it may name.
        key: The public key, for :func:`jwt.decode`.
    """

    kid: str
    algorithms: frozenset[str]
    key: Any


class FetchFailed(Exception):
    """The discovery document or the JWKS could not be fetched or used."""


class IssuerKeys:
    """The cached keys of one issuer.

    Args:
        issuer: The issuer, exactly as its tokens' ``iss`` says it.
        algorithms: The algorithms accepted at all (asymmetric ones only).
        refresh_seconds: How often the keys are fetched again.
        min_refresh_seconds: Least time between two fetches.
        timeout_seconds: Deadline of each HTTP request to the issuer.
        backoff: Delays between fetches after failures.
        transport: The HTTP transport; tests may pass another.
    """

    def __init__(
        self,
        issuer: str,
        *,
        algorithms: tuple[str, ...],
        refresh_seconds: float,
        min_refresh_seconds: float,
        timeout_seconds: float,
        backoff: Backoff | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self._algorithms = frozenset(algorithms)
        self._refresh_seconds = refresh_seconds
        self._min_gap = min_refresh_seconds
        self._backoff = backoff or Backoff(initial_seconds=1.0, maximum_seconds=60.0)
        self._timeout = timeout_seconds
        self._transport = transport
        self._http: httpx2.AsyncClient | None = None
        self._keys: tuple[IssuerKey, ...] | None = None
        self._by_kid: dict[str, IssuerKey] = {}
        self._problem = "not fetched yet"
        self._last_fetch: float | None = None
        self._failures = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether the keys have been fetched at least once."""
        return self._keys is not None

    async def start(self) -> None:
        """Fetch and refresh the keys in the background. Safe to call twice."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._keep_fresh(), name=f"jwks {self.issuer}")

    async def close(self) -> None:
        """Stop refreshing. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def key(self, kid: str) -> IssuerKey:
        """The issuer's key ``kid``; fetches the keys again first when it is unknown and
        the last fetch is old enough.

        Raises:
            AuthFailed: The issuer has no such key (INVALID_SIGNATURE).
            AuthUnavailable: The keys have never been fetched, or the last fetch failed:
                ``kid`` may be a key the issuer has just rotated in.
        """
        found = self._known(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._known(kid)
            if found is None and self._may_fetch():
                await self._fetch_logged()
                found = self._known(kid)
        if found is not None:
            return found
        if self._keys is None or self._failures:
            raise self._unavailable()
        raise AuthFailed(
            f"the JWT's key {kid!r} is not one of the OpenID issuer's keys",
            failure=events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            credential_type=events.CREDENTIAL_TYPE_JWT,
        )

    def sole_key(self, algorithm: str) -> IssuerKey:
        """The issuer's one key that signs with ``algorithm``, for a JWT naming no kid.

        Raises:
            AuthFailed: The issuer has no such key, or several (INVALID_SIGNATURE).
            AuthUnavailable: The keys have never been fetched.
        """
        if self._keys is None:
            raise self._unavailable()
        found = [key for key in self._keys if algorithm in key.algorithms]
        if len(found) == 1:
            return found[0]
        problem = "no key" if not found else f"{len(found)} keys"
        raise AuthFailed(
            f"the JWT names no key (kid), and the OpenID issuer has {problem} for {algorithm}",
            failure=events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            credential_type=events.CREDENTIAL_TYPE_JWT,
        )

    def _unavailable(self) -> AuthUnavailable:
        known = "are not known yet" if self._keys is None else "could not be fetched again"
        return AuthUnavailable(
            f"the keys of the OpenID issuer {self.issuer} {known}: {self._problem}",
            reason="ISSUER_KEYS_UNAVAILABLE",
        )

    def _known(self, kid: str) -> IssuerKey | None:
        return self._by_kid.get(kid)

    def _may_fetch(self) -> bool:
        last = self._last_fetch
        return last is None or time.monotonic() - last >= self._min_gap

    async def _keep_fresh(self) -> None:
        while True:
            async with self._lock:
                if self._may_fetch():
                    await self._fetch_logged()
            # The last fetch may have been a request's: its outcome decides all the same.
            failures = self._failures
            await asyncio.sleep(
                self._backoff.delay(failures) if failures else self._refresh_seconds
            )

    async def _fetch_logged(self) -> None:
        before = None if self._keys is None else _kids(self._keys)
        try:
            self._keys = await self._fetch()
            self._by_kid = {key.kid: key for key in self._keys if key.kid}
        except FetchFailed as exc:
            self._failures += 1
            self._problem = str(exc)
            log.warning(
                "the OpenID issuer's keys could not be fetched",
                extra={"issuer": self.issuer, "problem": self._problem},
            )
            return
        self._failures = 0
        self._problem = ""
        log.log(
            logging.DEBUG if before == _kids(self._keys) else logging.INFO,
            "the OpenID issuer's keys were fetched",
            extra={"issuer": self.issuer, "kids": _kids(self._keys)},
        )

    async def _fetch(self) -> tuple[IssuerKey, ...]:
        self._last_fetch = time.monotonic()
        discovery = await self._document(self.issuer.rstrip("/") + _DISCOVERY)
        if discovery.get("issuer") != self.issuer:
            raise FetchFailed(
                f"the discovery document names issuer {discovery.get('issuer')!r},"
                f" not {self.issuer!r}"
            )
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise FetchFailed("the discovery document has no jwks_uri")
        listed = (await self._document(jwks_uri)).get("keys")
        if not isinstance(listed, list):
            raise FetchFailed(f"{jwks_uri} holds no keys")
        keys = (self._usable(jwk) for jwk in listed if isinstance(jwk, dict))
        return tuple(key for key in keys if key is not None)

    async def _document(self, url: str) -> dict[str, Any]:
        if self._closed:
            raise FetchFailed("the gateway is shutting down")
        if self._http is None:
            # Made on first use, inside the event loop, and closed by close().
            self._http = httpx2.AsyncClient(
                timeout=self._timeout, transport=self._transport, follow_redirects=False
            )
        try:
            response = await self._http.get(url, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise FetchFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise FetchFailed(f"GET {url}: HTTP {response.status_code}")
        if len(response.content) > _MAX_DOCUMENT_BYTES:
            raise FetchFailed(f"GET {url}: larger than {_MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(response.content)
        except ValueError as exc:
            raise FetchFailed(f"GET {url}: not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise FetchFailed(f"GET {url}: not a JSON object")
        return document

    def _usable(self, jwk: dict[str, Any]) -> IssuerKey | None:
        kid, kty, crv = jwk.get("kid", ""), jwk.get("kty"), jwk.get("crv")
        if not isinstance(kid, str) or jwk.get("use", "sig") != "sig":
            return None
        if not isinstance(kty, str) or not isinstance(crv, str | None):
            return None
        family = _FAMILIES.get((kty, None if kty == "RSA" else crv), frozenset())
        algorithms = family & self._algorithms
        if "alg" in jwk:
            algorithms &= {jwk["alg"]}
        if not algorithms:
            return None
        try:
            key = jwt.PyJWK(jwk, algorithm=min(algorithms)).key
        except jwt.PyJWTError as exc:
            log.warning(
                "an OpenID issuer's key is unusable",
                extra={"issuer": self.issuer, "kid": kid, "problem": str(exc)},
            )
            return None
        return IssuerKey(kid, algorithms, key)


def _kids(keys: tuple[IssuerKey, ...]) -> list[str]:
    return sorted(key.kid or "(none)" for key in keys)
