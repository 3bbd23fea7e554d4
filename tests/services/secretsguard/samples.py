"""Credentials of real shape, made fresh for each run (never real ones), and near misses
that a guard must not take for credentials."""

from __future__ import annotations

import datetime as dt
import secrets
import string

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from meshkit import token_format

UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
BASE64 = ALNUM + "/+"


def random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def plugmesh_token() -> str:
    body = token_format.PREFIX + random(token_format.ALPHABET, token_format.RANDOM_LENGTH)
    return body + token_format.checksum(body)


def broken_checksum(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("0" if last != "0" else "1")


def private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def a_jwt() -> str:
    claims = {"sub": "someone", "exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)}
    return jwt.encode(claims, random(ALNUM, 32), algorithm="HS256")


def found() -> dict[str, str]:
    """A credential of each detector's, by detector name."""
    return {
        "plugmesh-machine-token": plugmesh_token(),
        "aws-access-key-id": "AKIA" + random(UPPER_DIGITS, 16),
        "aws-secret-access-key": "aws_secret_access_key = " + random(BASE64, 40),
        "github-token": "ghp_" + random(ALNUM, 36),
        "github-fine-grained-token": f"github_pat_{random(ALNUM, 22)}_{random(ALNUM, 59)}",
        "gitlab-token": "glpat-" + random(ALNUM, 20),
        "google-api-key": "AIza" + random(ALNUM, 35),
        "slack-token": "xoxb-1234567890123-1234567890123-" + random(ALNUM, 24),
        "stripe-secret-key": "sk_live_" + random(ALNUM, 24),
        "anthropic-api-key": "sk-ant-api03-" + random(ALNUM, 95),
        "openai-api-key": "sk-proj-" + random(ALNUM, 48),
        "private-key": private_key_pem(),
        "jwt": a_jwt(),
    }


def near_misses() -> dict[str, str]:
    """Something close to each detector's credential that is not one."""
    token = plugmesh_token()
    return {
        "plugmesh-machine-token": broken_checksum(token),
        "plugmesh-machine-token-short": token[:-1],
        "aws-access-key-id": "AKIA" + random(UPPER_DIGITS, 15),
        "aws-access-key-id-prefix": "AKIB" + random(UPPER_DIGITS, 16),
        "aws-secret-access-key": "aws_secret_access_key = " + random(BASE64, 39),
        "aws-secret-access-key-unnamed": "value " + random(BASE64, 40),
        "github-token": "ghx_" + random(ALNUM, 36),
        "github-token-short": "ghp_" + random(ALNUM, 35),
        "github-token-glued": "xghp_" + random(ALNUM, 36),
        "github-fine-grained-token": f"github_pat_{random(ALNUM, 22)}_{random(ALNUM, 58)}",
        "gitlab-token": "glpat-" + random(ALNUM, 19),
        "google-api-key": "AIza" + random(ALNUM, 34),
        "slack-token": "xoxq-1234567890123-1234567890123-" + random(ALNUM, 24),
        "stripe-secret-key": "sk_test_" + random(ALNUM, 24),
        "anthropic-api-key": "sk-ant-api03-" + random(ALNUM, 20),
        "openai-api-key": "sk-proj-" + random(ALNUM, 10),
        "private-key": public_key_pem(),
        "jwt": "eyJub3QganNvbg." + "eyJzdWIiOiJ4In0." + random(ALNUM, 20),
        "jwt-header-only": "eyJhbGciOiJIUzI1NiJ9",
        "uuid": "123e4567-e89b-12d3-a456-426614174000",
        "sha256": random("0123456789abcdef", 64),
    }
