"""The gateway's settings come from the environment, once, with clear errors."""

from __future__ import annotations

import pytest

from gateway.config import GatewayConfig
from launcher.processes import ENVIRONMENT
from meshkit.config import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    config = GatewayConfig.from_env({})

    assert (config.grpc_address, config.http_address) == ("127.0.0.1:50051", "127.0.0.1:8080")
    assert (config.default_deadline_seconds, config.max_message_bytes) == (30.0, 4 * 1024 * 1024)
    assert config.registry_address == "127.0.0.1:50050"


def test_every_setting_is_read_from_its_variable() -> None:
    config = GatewayConfig.from_env(
        {
            "PLUGMESH_GATEWAY_GRPC_ADDRESS": "0.0.0.0:1",
            "PLUGMESH_GATEWAY_HTTP_ADDRESS": "0.0.0.0:2",
            "PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS": "2.5",
            "PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES": "1024",
            "PLUGMESH_REGISTRY_ADDRESS": "10.0.0.1:3",
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "7",
            "PLUGMESH_GATEWAY_HTTP_BODY_LIMIT_BYTES": "2048",
            "PLUGMESH_GATEWAY_PLAINTEXT": "allow",
        }
    )

    assert (config.grpc_address, config.http_address) == ("0.0.0.0:1", "0.0.0.0:2")
    assert config.front_door.plaintext_anywhere
    assert (config.default_deadline_seconds, config.max_message_bytes) == (2.5, 1024)
    assert (config.registry_address, config.shutdown_grace_seconds) == ("10.0.0.1:3", 7.0)
    assert config.http.body_limit_bytes == 2048


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param(
            "PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS", "soon", "number of seconds", id="nan"
        ),
        pytest.param("PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS", "0", "positive", id="zero"),
        pytest.param("PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES", "1.5", "whole number", id="float"),
        pytest.param("PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES", "-1", "positive", id="negative"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        GatewayConfig.from_env({variable: value})

    assert variable in str(raised.value)


def test_the_gateway_variables_are_documented() -> None:
    documented = {variable.name for variable in ENVIRONMENT}

    assert {
        "PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS",
        "PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES",
        "PLUGMESH_GATEWAY_HTTP_BODY_LIMIT_BYTES",
        "PLUGMESH_GATEWAY_HTTP_TIMEOUT_SECONDS",
        "PLUGMESH_GATEWAY_HTTP_MAX_TIMEOUT_SECONDS",
    } <= documented
