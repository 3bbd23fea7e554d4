"""OpenTelemetry's settings (the standard ``OTEL_*`` variables), and traces off by default
with nothing of the SDK imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshkit.config import ConfigError, MeshConfig
from meshkit.otel_settings import OtelSettings

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no-endpoint"),
        pytest.param({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, id="sdk-disabled"),
        pytest.param({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, id="exporter-none"),
        pytest.param({"OTEL_SERVICE_NAME": "svc"}, id="only-a-name"),
    ],
)
def test_traces_are_off_without_an_endpoint_or_when_disabled(env: dict[str, str]) -> None:
    assert not MeshConfig.from_env(env).otel.enabled


def test_the_standard_variables_are_read() -> None:
    settings = OtelSettings.from_env(
        {
            **ENDPOINT,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4317",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%20ecret, team=core",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_SERVICE_NAME": "edge",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
    )

    assert settings == OtelSettings(
        endpoint="https://traces:4317",
        insecure=False,
        headers={"api-key": "s ecret", "team": "core"},
        timeout_millis=2500.0,
        service_name="edge",
        resource_attributes={"deployment.environment": "prod"},
        sampler="parentbased_traceidratio",
        sampler_ratio=0.25,
        schedule_delay_millis=200.0,
    )
    assert "s ecret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "insecure"),
    [
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, True, id="http"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317"}, False, id="https"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317"}, False, id="bare"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
            True,
            id="bare-insecure",
        ),
    ],
)
def test_plain_text_follows_the_scheme(env: dict[str, str], insecure: bool) -> None:
    assert OtelSettings.from_env(env).insecure is insecure


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "PROTOCOL", id="http"),
        pytest.param({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", id="zipkin"),
        pytest.param({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER", id="sampler"),
        pytest.param({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG", id="ratio"),
        pytest.param({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "TIMEOUT", id="timeout"),
        pytest.param({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY", id="delay"),
        pytest.param({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "HEADERS", id="headers"),
    ],
)
def test_a_value_that_cannot_be_used_is_refused_naming_its_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        OtelSettings.from_env({**ENDPOINT, **env})


def test_with_traces_off_no_process_imports_the_sdk() -> None:
    # A fresh interpreter: the one running the tests may have imported it already.
    code = (
        "import sys\n"
        "import gateway.app, meshkit.server, services.audit.app\n"
        "from meshkit.config import MeshConfig\n"
        "from meshkit.spans import open_recorder\n"
        "assert open_recorder(MeshConfig.from_env({}).otel, 'gateway') is None\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('opentelemetry.sdk', 'opentelemetry.exporter', 'meshkit._otlp'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
