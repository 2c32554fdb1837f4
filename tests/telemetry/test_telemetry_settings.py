"""Resolving [components.telemetry] against the OTEL_* environment."""

from __future__ import annotations

import pytest

from garrison.exceptions import ConfigError
from garrison.telemetry import TelemetryConfig, resolve_settings


def test_defaults_leave_the_sdk_off_with_the_spec_defaults() -> None:
    settings = resolve_settings(TelemetryConfig(), {})
    assert not settings.enabled
    assert settings.protocol == "http/protobuf"
    assert settings.traces_endpoint == "http://localhost:4318/v1/traces"
    assert settings.metrics_endpoint == "http://localhost:4318/v1/metrics"
    assert settings.sampler == "parentbased_always_on"
    assert settings.traces_exporter == ("otlp",)


def test_a_generic_endpoint_enables_export_and_gets_the_signal_path() -> None:
    settings = resolve_settings(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert settings.enabled
    assert settings.traces_endpoint == "http://collector:4318/v1/traces"
    assert settings.metrics_endpoint == "http://collector:4318/v1/metrics"


def test_a_signal_endpoint_is_used_as_is() -> None:
    settings = resolve_settings(
        None,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://tempo.example/otlp/traces",
        },
    )
    assert settings.traces_endpoint == "https://tempo.example/otlp/traces"
    assert settings.metrics_endpoint == "http://collector:4318/v1/metrics"


def test_the_environment_wins_over_the_file() -> None:
    config = TelemetryConfig(
        export=True,
        service_name="from-file",
        endpoint="http://file:4318",
        compression="none",
        sampler="always_on",
        headers={"x-team": "file", "x-keep": "1"},
    )
    settings = resolve_settings(
        config,
        {
            "OTEL_SERVICE_NAME": "from-env",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=env,authorization=Bearer%20abc",
        },
    )
    assert settings.service_name == "from-env"
    assert settings.traces_endpoint == "http://env:4318/v1/traces"
    assert settings.compression == "gzip"
    assert settings.sampler == "parentbased_traceidratio"
    assert settings.sampler_arg == 0.01
    assert settings.headers == {"x-team": "env", "x-keep": "1", "authorization": "Bearer abc"}
    assert settings.sources["endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_the_file_applies_when_the_environment_is_silent() -> None:
    config = TelemetryConfig(export=True, endpoint="http://file:4318", compression="gzip")
    settings = resolve_settings(config, {})
    assert settings.enabled
    assert settings.traces_endpoint == "http://file:4318/v1/traces"
    assert settings.compression == "gzip"


def test_resource_attributes_are_decoded_and_service_name_wins() -> None:
    settings = resolve_settings(
        TelemetryConfig(resource_attributes={"team": "ops"}),
        {
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,deployment.environment=prod%20eu, k = v ",
            "OTEL_SERVICE_NAME": "billing",
        },
    )
    assert settings.resource_attributes == {
        "team": "ops",
        "service.name": "billing",
        "deployment.environment": "prod eu",
        "k": "v",
    }


def test_sdk_disabled_beats_everything() -> None:
    settings = resolve_settings(
        TelemetryConfig(export=True),
        {"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
    )
    assert not settings.enabled


def test_sdk_disabled_false_switches_export_on() -> None:
    assert resolve_settings(None, {"OTEL_SDK_DISABLED": "false"}).enabled


def test_service_name_alone_does_not_switch_export_on() -> None:
    assert not resolve_settings(None, {"OTEL_SERVICE_NAME": "svc"}).enabled


@pytest.mark.parametrize(
    ("env", "path"),
    [
        ({"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED"),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"},
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "team"}, "OTEL_RESOURCE_ATTRIBUTES"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(None, env)
    assert info.value.path == path
    assert path in str(info.value)


def test_invalid_file_values_name_the_config_key() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_settings(TelemetryConfig(sampler="sometimes"), {})
    assert info.value.path == "components.telemetry.sampler"


def test_exporter_lists_and_none() -> None:
    settings = resolve_settings(
        None, {"OTEL_TRACES_EXPORTER": "otlp, Console", "OTEL_METRICS_EXPORTER": "none"}
    )
    assert settings.traces_exporter == ("otlp", "console")
    assert settings.metrics_exporter == ()
    assert settings.enabled


def test_ratio_sampler_defaults_to_one_and_others_take_no_argument() -> None:
    assert resolve_settings(None, {"OTEL_TRACES_SAMPLER": "traceidratio"}).sampler_arg == 1.0
    assert resolve_settings(None, {"OTEL_TRACES_SAMPLER_ARG": "0.5"}).sampler_arg is None


def test_grpc_uses_its_own_port_and_no_signal_path() -> None:
    settings = resolve_settings(None, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert settings.protocol == "grpc"
    assert settings.traces_endpoint == "http://localhost:4317"
    signal = resolve_settings(
        None,
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
        },
    )
    assert signal.protocol == "grpc"
    assert signal.traces_endpoint == "http://c:4317"
