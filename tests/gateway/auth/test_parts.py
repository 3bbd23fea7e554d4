"""The parts of the gateway's authentication on their own: settings, credentials, the
access table and the answer cache."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from gateway.auth.access import access_of, authorize
from gateway.auth.cache import AnswerCache, digest
from gateway.auth.credentials import CredentialKind, parse_header
from gateway.auth.errors import AuthFailed, Forbidden
from gateway.auth.settings import VARIABLES, AuthSettings
from launcher.processes import ENVIRONMENT
from meshkit.config import ConfigError
from meshkit.identity import Identity, PrincipalKind
from plugmesh.options.v1 import options_pb2
from services.machineusers.config import VARIABLES as MACHINE_USERS_VARIABLES

# --- settings --------------------------------------------------------------------------


def test_every_auth_and_machine_users_variable_is_in_the_mesh_table() -> None:
    documented = {(v.name, v.default) for v in ENVIRONMENT}

    for name, default, _ in (*VARIABLES, *MACHINE_USERS_VARIABLES):
        assert (name, default) in documented, name


def test_settings_are_read_from_the_environment() -> None:
    settings = AuthSettings.from_env(
        {
            "PLUGMESH_GATEWAY_JWT_HS256_SECRET": "s" * 40,
            "PLUGMESH_GATEWAY_JWT_ISSUER": "https://idp.example",
            "PLUGMESH_GATEWAY_JWT_AUDIENCE": "plugmesh",
            "PLUGMESH_GATEWAY_JWT_LEEWAY_SECONDS": "5",
            "PLUGMESH_GATEWAY_AUTH_CACHE_TTL_SECONDS": "0",
            "PLUGMESH_GATEWAY_AUTH_TIMEOUT_SECONDS": "2.5",
        }
    )

    assert settings.accepts_jwts
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://idp.example", "plugmesh")
    assert (settings.jwt_leeway_seconds, settings.cache_ttl_seconds) == (5.0, 0.0)
    assert settings.timeout_seconds == 2.5
    assert "s" * 40 not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PLUGMESH_GATEWAY_AUTH_CACHE_TTL_SECONDS", "-1"),
        ("PLUGMESH_GATEWAY_AUTH_CACHE_TTL_SECONDS", "soon"),
        ("PLUGMESH_GATEWAY_AUTH_TIMEOUT_SECONDS", "0"),
        ("PLUGMESH_GATEWAY_JWT_RS256_PUBLIC_KEY", "/no/such/key.pem"),
    ],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        AuthSettings.from_env({variable: value})


def test_openid_connect_settings_are_read_from_the_environment() -> None:
    settings = AuthSettings.from_env(
        {
            "PLUGMESH_GATEWAY_OIDC_ISSUER": "https://idp.example/realms/acme/",
            "PLUGMESH_GATEWAY_JWT_AUDIENCE": "plugmesh",
            "PLUGMESH_GATEWAY_OIDC_ALGORITHMS": " ES256 , EdDSA ",
            "PLUGMESH_GATEWAY_OIDC_REFRESH_SECONDS": "600",
            "PLUGMESH_GATEWAY_OIDC_MIN_REFRESH_SECONDS": "10",
        }
    )

    assert settings.accepts_jwts
    # Exactly as the issuer's tokens say it, trailing slash included.
    assert settings.oidc_issuer == "https://idp.example/realms/acme/"
    assert settings.authorization_server == settings.oidc_issuer
    assert settings.oidc_algorithms == ("ES256", "EdDSA")
    assert (settings.oidc_refresh_seconds, settings.oidc_min_refresh_seconds) == (600, 10)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param(
            {"PLUGMESH_GATEWAY_OIDC_ISSUER": "https://idp.example"},
            "PLUGMESH_GATEWAY_JWT_AUDIENCE",
            id="issuer-without-audience",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_OIDC_ISSUER": "idp.example", "PLUGMESH_GATEWAY_JWT_AUDIENCE": "a"},
            "PLUGMESH_GATEWAY_OIDC_ISSUER",
            id="issuer-not-a-url",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_OIDC_ALGORITHMS": "RS256,HS256"},
            "PLUGMESH_GATEWAY_OIDC_ALGORITHMS",
            id="symmetric-algorithm",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_OIDC_ALGORITHMS": "none"},
            "PLUGMESH_GATEWAY_OIDC_ALGORITHMS",
            id="alg-none",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_OIDC_MIN_REFRESH_SECONDS": "0"},
            "PLUGMESH_GATEWAY_OIDC_MIN_REFRESH_SECONDS",
            id="no-gap",
        ),
    ],
)
def test_a_bad_openid_connect_setting_names_its_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        AuthSettings.from_env(env)


# --- credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("   ", None, id="blank"),
        pytest.param("Bearer pmk_abc", CredentialKind.MACHINE_TOKEN, id="machine"),
        pytest.param("bearer pmk_abc", CredentialKind.MACHINE_TOKEN, id="scheme-any-case"),
        pytest.param("Bearer a.b.c", CredentialKind.JWT, id="jwt"),
    ],
)
def test_bearer_credentials_are_told_apart(header: str | None, kind: CredentialKind | None) -> None:
    credential = parse_header(header)

    assert (credential.kind if credential else None) == kind
    if credential is not None:
        assert credential.secret not in repr(credential)


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "pmk_abc"])
def test_other_authorization_headers_are_malformed(header: str) -> None:
    with pytest.raises(AuthFailed) as refused:
        parse_header(header)

    assert refused.value.reason == "MALFORMED_CREDENTIALS"


# --- the access table ------------------------------------------------------------------


def _rpcs() -> dict[str, object]:
    """A service with one method per access level (and one declaring none)."""
    name = "test/auth/v1/access.proto"
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(
            name=name,
            package="test.auth.v1",
            syntax="proto3",
            dependency=["plugmesh/options/v1/options.proto"],
        )
        file.message_type.add(name="Empty")
        service = file.service.add(name="AccessService")
        for method_name, access in [
            ("Undeclared", None),
            ("Public", options_pb2.ACCESS_PUBLIC),
            ("Authenticated", options_pb2.ACCESS_AUTHENTICATED),
            ("Admin", options_pb2.ACCESS_ADMIN),
            ("Internal", options_pb2.ACCESS_INTERNAL),
        ]:
            method = service.method.add(
                name=method_name,
                input_type=".test.auth.v1.Empty",
                output_type=".test.auth.v1.Empty",
            )
            if access is not None:
                method.options.Extensions[options_pb2.access] = access
        pool.Add(file)
    found = pool.FindServiceByName("test.auth.v1.AccessService")
    return dict(found.methods_by_name)


RPCS = _rpcs()
ANONYMOUS = None
PLAIN = Identity(PrincipalKind.MACHINE, "mu-1")
PERSON = Identity(PrincipalKind.USER, "alice")
ADMIN = Identity(PrincipalKind.MACHINE, "mu-admin", admin=True)
SERVICE = Identity(PrincipalKind.SERVICE, "mesh")
OK, E401, E403 = "ok", "401", "403"

TABLE = {
    #               anonymous  plain  person  admin  service
    "Undeclared": (E401, OK, OK, OK, OK),
    "Public": (OK, OK, OK, OK, OK),
    "Authenticated": (E401, OK, OK, OK, OK),
    "Admin": (E401, E403, E403, OK, OK),
    "Internal": (E403, E403, E403, E403, OK),
}


@pytest.mark.parametrize("method", list(TABLE))
@pytest.mark.parametrize(
    ("column", "identity"),
    [(0, ANONYMOUS), (1, PLAIN), (2, PERSON), (3, ADMIN), (4, SERVICE)],
    ids=["anonymous", "plain", "person", "admin", "service"],
)
def test_the_access_table(method: str, column: int, identity: Identity | None) -> None:
    rpc = RPCS[method]
    try:
        authorize(rpc, identity)  # type: ignore[arg-type]  # a MethodDescriptor
        outcome = OK
    except AuthFailed:
        outcome = E401
    except Forbidden:
        outcome = E403

    assert outcome == TABLE[method][column]


def test_an_undeclared_access_is_authenticated() -> None:
    assert access_of(RPCS["Undeclared"]) == options_pb2.ACCESS_AUTHENTICATED  # type: ignore[arg-type]


# --- the cache -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock, ttl: float = 10.0, size: int = 100) -> AnswerCache[str]:
    cache: AnswerCache[str] = AnswerCache(ttl_seconds=ttl, max_entries=size, clock=clock)
    cache.enabled = True
    return cache


def test_an_answer_lives_for_the_ttl_or_less_when_it_says_so() -> None:
    clock = Clock()
    cache = _cache(clock)
    cache.put(digest("a"), "A", owner="o", epoch=cache.epoch)
    cache.put(digest("b"), "B", owner="o", epoch=cache.epoch, max_seconds=2)

    clock.now += 3
    assert (cache.get(digest("a")), cache.get(digest("b"))) == ("A", None)
    clock.now += 7
    assert cache.get(digest("a")) is None


def test_dropping_an_owner_forgets_its_answers_only() -> None:
    cache = _cache(Clock())
    cache.put(digest("a1"), "A1", owner="a", epoch=cache.epoch)
    cache.put(digest("a2"), "A2", owner="a", epoch=cache.epoch)
    cache.put(digest("b"), "B", owner="b", epoch=cache.epoch)

    cache.drop_owner("a")

    assert [cache.get(digest(k)) for k in ("a1", "a2", "b")] == [None, None, "B"]


def test_an_answer_asked_for_before_an_invalidation_is_not_stored() -> None:
    cache = _cache(Clock())
    epoch = cache.epoch  # a lookup starts
    cache.drop_owner("someone")  # an event arrives meanwhile

    cache.put(digest("a"), "A", owner="o", epoch=epoch)

    assert cache.get(digest("a")) is None


def test_nothing_is_stored_while_disabled_or_with_a_ttl_of_0() -> None:
    disabled = _cache(Clock())
    disabled.enabled = False
    no_ttl = _cache(Clock(), ttl=0)

    for cache in (disabled, no_ttl):
        cache.put(digest("a"), "A", owner="o", epoch=cache.epoch)
        assert len(cache) == 0


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = _cache(Clock(), size=2)
    cache.put(digest("a"), "A", owner="o", epoch=cache.epoch)
    cache.put(digest("b"), "B", owner="o", epoch=cache.epoch)
    cache.get(digest("a"))

    cache.put(digest("c"), "C", owner="o", epoch=cache.epoch)

    assert [cache.get(digest(k)) for k in ("a", "b", "c")] == ["A", None, "C"]
