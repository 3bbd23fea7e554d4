"""JWTs of people: verified with the configured HS256 secret or RS256 public key.

A JWT authenticates a person when its signature verifies with the key of its ``alg``
(HS256 or RS256, whichever are configured: never ``none``, never a key of the other
kind), it carries ``sub`` and ``exp``, it has not expired (nor is used before ``nbf``),
and its ``iss`` and ``aud`` match when the gateway is configured with them. The person
is the ``sub`` claim; ``email`` is carried along when present.
"""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.auth.errors import AuthFailed
from gateway.auth.logins import Login, login_of
from gateway.auth.settings import RS256_PUBLIC_KEY, AuthSettings
from meshkit.config import ConfigError
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2 as events

__all__ = ["JwtVerifier"]

_JWT = events.CREDENTIAL_TYPE_JWT
_MAX_SUBJECT_LENGTH = 128


class JwtVerifier:
    """Verifies JWTs with the keys of ``settings``.

    Raises:
        ConfigError: The RS256 key is not a PEM RSA public key.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys: dict[str, Any] = {}
        if settings.jwt_hs256_secret:
            self._keys["HS256"] = settings.jwt_hs256_secret
        if settings.jwt_rs256_public_key:
            self._keys["RS256"] = _rsa_key(settings.jwt_rs256_public_key)

    def verify(self, token: str) -> Identity:
        """The person ``token`` authenticates.

        Raises:
            AuthFailed: The token is malformed, badly signed, expired or its claims are
                not acceptable; the reason says which.
        """
        return _person(self._claims(token))

    def verify_session(self, token: str) -> tuple[Identity, Login]:
        """The person ``token`` authenticates, and the session it belongs to.

        Raises:
            AuthFailed: As :meth:`verify`.
        """
        claims = self._claims(token)
        return _person(claims), login_of(token, claims)

    def _claims(self, token: str) -> dict[str, Any]:
        if not self._keys:
            raise _failed(
                "this gateway accepts no JWTs (no key is configured)",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise _failed("the token is not a JWT", events.AUTH_FAILURE_REASON_MALFORMED) from None
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            accepted = ", ".join(sorted(self._keys))
            raise _failed(
                f"JWTs signed with {algorithm!r} are not accepted (only {accepted})",
                events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            )
        return self._decode(token, key, algorithm)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": settings.jwt_audience is not None,
                },
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
