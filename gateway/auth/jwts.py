"""JWTs of people: verified with an OpenID issuer's keys, or the configured HS256 secret
or RS256 public key.

With an OpenID Connect issuer configured, a JWT whose header names a ``kid`` is verified
with the issuer's key of that id (:mod:`gateway.auth.jwks`), one naming none (when no
static key takes its ``alg``) with the issuer's only key of its ``alg``, with an algorithm
that key allows (the token's ``alg`` must be one of them: never ``none``, never HS256 with a
public key as its secret); its ``iss`` must be the issuer and its ``aud`` the configured
audience, both required. Any other JWT is verified with the key of its ``alg`` (HS256 or
RS256, whichever are configured: never ``none``, never a key of the other kind), and its
``iss`` and ``aud`` must match when the gateway is configured with them.

Either way it carries ``sub`` and ``exp`` and has not expired (nor is used before
``nbf``). The person is the ``sub`` claim; ``email`` is carried along when present.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.auth.errors import AuthFailed
from gateway.auth.jwks import IssuerKeys
from gateway.auth.logins import Login, login_of
from gateway.auth.settings import RS256_PUBLIC_KEY, AuthSettings
from meshkit.config import ConfigError
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2 as events

__all__ = ["JwtVerifier"]

_JWT = events.CREDENTIAL_TYPE_JWT
_MAX_SUBJECT_LENGTH = 128


class JwtVerifier:
    """Verifies JWTs with the keys of ``settings`` and of ``issuer``.

    Args:
        settings: The static keys, the required ``iss`` and ``aud``, the leeway.
        issuer: The OpenID issuer's keys, when one is configured.

    Raises:
        ConfigError: The RS256 key is not a PEM RSA public key.
    """

    def __init__(self, settings: AuthSettings, issuer: IssuerKeys | None = None) -> None:
        self._settings = settings
        self._issuer = issuer
        self._keys: dict[str, Any] = {}
        if settings.jwt_hs256_secret:
            self._keys["HS256"] = settings.jwt_hs256_secret
        if settings.jwt_rs256_public_key:
            self._keys["RS256"] = _rsa_key(settings.jwt_rs256_public_key)

    async def verify(self, token: str) -> Identity:
        """The person ``token`` authenticates.

        Raises:
            AuthFailed: The token is malformed, badly signed, expired or its claims are
                not acceptable; the reason says which.
            AuthUnavailable: The OpenID issuer's keys have not been fetched yet.
        """
        return _person(await self._claims(token))

    async def verify_session(self, token: str) -> tuple[Identity, Login]:
        """The person ``token`` authenticates, and the session it belongs to.

        Raises:
            AuthFailed: As :meth:`verify`.
            AuthUnavailable: As :meth:`verify`.
        """
        claims = await self._claims(token)
        return _person(claims), login_of(token, claims)

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _failed("the token is not a JWT", events.AUTH_FAILURE_REASON_MALFORMED) from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if self._issuer is not None and isinstance(kid, str) and kid:
            return await self._issued(token, self._issuer, kid, algorithm)
        static = isinstance(algorithm, str) and algorithm in self._keys
        if self._issuer is not None and not kid and not static:
            return self._issued_without_kid(token, self._issuer, algorithm)
        if not self._keys:
            raise _failed(
                "this gateway accepts no JWTs (no key is configured)"
                if self._issuer is None
                else "the JWT names no key (kid) of the OpenID issuer",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            accepted = ", ".join(sorted(self._keys))
            raise _failed(
                f"JWTs signed with {algorithm!r} are not accepted (only {accepted})",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        settings = self._settings
        return self._decode(
            token, key, algorithm, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )

    async def _issued(
        self, token: str, issuer: IssuerKeys, kid: str, algorithm: object
    ) -> dict[str, Any]:
        # Refused before its kid may cost a fetch of the issuer's keys.
        self._accepted_by_issuers(algorithm)
        key = await issuer.key(kid)
        if not isinstance(algorithm, str) or algorithm not in key.algorithms:
            accepted = ", ".join(sorted(key.algorithms))
            raise _failed(
                f"the JWT names algorithm {algorithm!r}; its key {kid!r} signs with {accepted}",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        return self._decode(
            token, key.key, algorithm, issuer=issuer.issuer, audience=self._settings.jwt_audience
        )

    def _issued_without_kid(
        self, token: str, issuer: IssuerKeys, algorithm: object
    ) -> dict[str, Any]:
        name = self._accepted_by_issuers(algorithm)
        key = issuer.sole_key(name)
        return self._decode(
            token, key.key, name, issuer=issuer.issuer, audience=self._settings.jwt_audience
        )

    def _accepted_by_issuers(self, algorithm: object) -> str:
        """``algorithm`` when JWTs of an OpenID issuer may be signed with it."""
        if not isinstance(algorithm, str) or algorithm not in self._settings.oidc_algorithms:
            accepted = ", ".join(self._settings.oidc_algorithms)
            raise _failed(
                f"JWTs signed with {algorithm!r} are not accepted (only {accepted})",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        return algorithm

    def _decode(
        self, token: str, key: Any, algorithm: str, *, issuer: str | None, audience: str | None
    ) -> dict[str, Any]:
        required = ["exp", "sub", *(["iss"] if issuer else []), *(["aud"] if audience else [])]
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={"require": required, "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _failed("the JWT has expired", events.AUTH_FAILURE_REASON_EXPIRED) from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise _failed(
                "the JWT's signature does not verify",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            ) from None
        except (
            jwt.InvalidIssuerError,
            jwt.InvalidAudienceError,
            jwt.ImmatureSignatureError,
            jwt.MissingRequiredClaimError,
            jwt.InvalidIssuedAtError,
        ) as exc:
            raise _failed(
                f"the JWT's claims are not acceptable: {exc}",
                events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            ) from None
        except jwt.PyJWTError:
            raise _failed("the token is not a JWT", events.AUTH_FAILURE_REASON_MALFORMED) from None


def _person(claims: dict[str, Any]) -> Identity:
    subject, email = claims.get("sub"), claims.get("email", "")
    if not isinstance(subject, str) or not subject or len(subject) > _MAX_SUBJECT_LENGTH:
        raise _failed(
            "the JWT's sub claim must be a user id of 1 to 128 characters",
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
        )
    return Identity(
        PrincipalKind.USER, subject, admin=False, email=email if isinstance(email, str) else ""
    )


def _failed(message: str, failure: events.AuthFailureReason.ValueType) -> AuthFailed:
    return AuthFailed(message, failure=failure, credential_type=_JWT)


def _rsa_key(pem: str) -> RSAPublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError(f"{RS256_PUBLIC_KEY} is not a PEM public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ConfigError(f"{RS256_PUBLIC_KEY} must be an RSA public key")
    return key
