"""Telemetry settings: the ``[components.telemetry]`` section merged with OTEL_*.

The standard OpenTelemetry environment variables win over the config file, and
garrison invents no variable for anything OTEL_* already names. Resolution is a
pure function of a config object and an environment mapping, so it is tested
without touching ``os.environ``.

When does garrison build the SDK? When the config says ``export = true``, or
when the environment clearly asks for an export pipeline: any of
``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` is set, or ``OTEL_SDK_DISABLED=false`` is
set explicitly. ``OTEL_SDK_DISABLED=true`` always turns it off. A variable such
as ``OTEL_SERVICE_NAME`` alone does not switch exporting on, because with no
collector configured the default endpoint (localhost:4318) would only produce
export errors.
"""

from __future__ import annotations

import math
import os
import urllib.parse

# Needed at run time, not only for type checking: the config loader resolves the
# dataclass annotations with typing.get_type_hints().
from collections.abc import Mapping  # noqa: TC003
from dataclasses import dataclass, field
from typing import Final, Literal

from garrison.exceptions import ConfigError

__all__ = ["SAMPLERS", "TelemetryConfig", "TelemetrySettings", "resolve_settings"]

Protocol = Literal["http/protobuf", "grpc"]
Compression = Literal["none", "gzip", "deflate"]

#: The sampler names of the OpenTelemetry specification that garrison builds.
SAMPLERS: Final = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
_PROTOCOLS: Final = ("http/protobuf", "grpc")
_COMPRESSIONS: Final = ("none", "gzip", "deflate")
_SWITCHES_ON: Final = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The ``[components.telemetry]`` section of ``garrison.toml``.

    Every field has an OTEL_* counterpart that overrides it when set. The
    defaults leave the SDK off, so ``garrison run`` works with no collector;
    ``export = true`` (or the OTEL_* variables) turn it on.

    ``log_format`` is ``"json"``, ``"console"`` or ``None`` (leave logging to
    the application); ``log_level`` is a stdlib level name. ``flush_timeout``
    bounds the flush on stop (seconds; the runtime's stop timeout bounds it too).
    ``trace_roots`` lets garrison start a trace of its own for a message or a
    store operation that has no current span (off: those make no span, so
    the sampler is never asked about them; see :func:`garrison.tracing.set_trace_roots`).
    """

    export: bool = False
    service_name: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    traces_exporter: tuple[str, ...] = ("otlp",)
    metrics_exporter: tuple[str, ...] = ("otlp",)
    logs_exporter: tuple[str, ...] = ()
    protocol: Protocol = "http/protobuf"
    endpoint: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: Compression = "none"
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"
    flush_timeout: float = 5.0
    trace_roots: bool = False

    def __post_init__(self) -> None:
        if self.flush_timeout <= 0:
            msg = f"flush_timeout must be greater than zero, got {self.flush_timeout!r}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """The effective telemetry settings after the environment was applied.

    ``traces_endpoint``, ``metrics_endpoint`` and ``logs_endpoint`` are full URLs for
    ``http/protobuf`` (``…/v1/traces``) and ``host:port`` URLs for ``grpc``.
    ``sources`` maps each setting to where it came from (an OTEL_* name,
    ``"config"`` or ``"default"``), for the startup log line.
    """

    enabled: bool
    service_name: str | None
    resource_attributes: Mapping[str, str]
    traces_exporter: tuple[str, ...]
    metrics_exporter: tuple[str, ...]
    logs_exporter: tuple[str, ...]
    protocol: Protocol
    traces_endpoint: str
    metrics_endpoint: str
    logs_endpoint: str
    headers: Mapping[str, str]
    compression: Compression
    sampler: str
    sampler_arg: float | None
    sources: Mapping[str, str] = field(default_factory=dict)


def resolve_settings(
    config: TelemetryConfig | None = None, environ: Mapping[str, str] | None = None
) -> TelemetrySettings:
    """Merge ``config`` with the OTEL_* variables of ``environ`` (``os.environ`` by default).

    Raises :class:`~garrison.exceptions.ConfigError` naming the variable (or
    config key) whose value is invalid.
    """
    if environ is None:
        environ = os.environ
    config = config or TelemetryConfig()
    env = {k: v.strip() for k, v in environ.items() if k.startswith("OTEL_") and v.strip()}
    sources: dict[str, str] = {}

    def pick(name: str, config_value: object, *variables: str) -> str | None:
        for variable in variables:
            if variable in env:
                sources[name] = variable
                return env[variable]
        sources[name] = "config"
        return None if config_value is None else str(config_value)

    disabled = env.get("OTEL_SDK_DISABLED", "").lower()
    if disabled not in ("", "true", "false"):
        raise ConfigError(f"expected true or false, got {disabled!r}", path="OTEL_SDK_DISABLED")
    # OTEL_METRICS_EXPORTER or OTEL_LOGS_EXPORTER on its own (say, prometheus)
    # asks for the signals it names only: the others go nowhere.
    named_only = (
        ("OTEL_METRICS_EXPORTER" in env or "OTEL_LOGS_EXPORTER" in env)
        and not config.export
        and disabled != "false"
        and not any(v in env for v in _SWITCHES_ON)
    )
    enabled = disabled != "true" and (
        config.export or disabled == "false" or any(v in env for v in _SWITCHES_ON) or named_only
    )

    protocol = (
        pick(
            "protocol",
            config.protocol,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
        or "http/protobuf"
    )
    if protocol not in _PROTOCOLS:
        raise ConfigError(
            f"unsupported OTLP protocol {protocol!r}; expected one of {list(_PROTOCOLS)}",
            path=_where(sources["protocol"], "protocol"),
        )

    compression = (
        pick(
            "compression",
            config.compression,
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        )
        or "none"
    ).lower()
    if compression not in _COMPRESSIONS:
        raise ConfigError(
            f"unsupported compression {compression!r}; expected one of {list(_COMPRESSIONS)}",
            path=_where(sources["compression"], "compression"),
        )

    traces_endpoint, metrics_endpoint, logs_endpoint = _endpoints(protocol, config, env, sources)

    headers = dict(config.headers)
    header_var = next(
        (
            v
            for v in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
            if v in env
        ),
        None,
    )
    if header_var:
        headers.update(_parse_pairs(env[header_var], header_var))
        sources["headers"] = header_var

    attributes = dict(config.resource_attributes)
    if config.service_name:
        attributes["service.name"] = config.service_name
    if "OTEL_RESOURCE_ATTRIBUTES" in env:
        attributes.update(_parse_pairs(env["OTEL_RESOURCE_ATTRIBUTES"], "OTEL_RESOURCE_ATTRIBUTES"))
    if "OTEL_SERVICE_NAME" in env:
        attributes["service.name"] = env["OTEL_SERVICE_NAME"]

    sampler = (pick("sampler", config.sampler, "OTEL_TRACES_SAMPLER") or "").lower()
    if sampler not in SAMPLERS:
        raise ConfigError(
            f"unsupported sampler {sampler!r}; expected one of {sorted(SAMPLERS)}",
            path=_where(sources["sampler"], "sampler"),
        )
    sampler_arg = _sampler_arg(sampler, config, env)

    return TelemetrySettings(
        enabled=enabled,
        service_name=attributes.get("service.name"),
        resource_attributes=attributes,
        traces_exporter=()
        if named_only
        else _exporters(env, "OTEL_TRACES_EXPORTER", config.traces_exporter),
        metrics_exporter=_exporters(
            env, "OTEL_METRICS_EXPORTER", () if named_only else config.metrics_exporter
        ),
        logs_exporter=_exporters(env, "OTEL_LOGS_EXPORTER", config.logs_exporter),
        protocol="grpc" if protocol == "grpc" else "http/protobuf",
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        logs_endpoint=logs_endpoint,
        headers=headers,
        compression="gzip"
        if compression == "gzip"
        else "deflate"
        if compression == "deflate"
        else "none",
        sampler=sampler,
        sampler_arg=sampler_arg,
        sources=sources,
    )


def _where(source: str, key: str) -> str:
    return f"components.telemetry.{key}" if source == "config" else source


def _endpoints(
    protocol: str, config: TelemetryConfig, env: Mapping[str, str], sources: dict[str, str]
) -> tuple[str, str, str]:
    """The traces, metrics and logs endpoints, following the OTLP exporter specification.

    A signal-specific variable is used as is; the generic endpoint gets the
    signal path (``v1/traces``) appended for http/protobuf, and is used as is
    for grpc, whose default port is 4317 instead of 4318.
    """
    grpc = protocol == "grpc"
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or config.endpoint
    sources["endpoint"] = (
        "OTEL_EXPORTER_OTLP_ENDPOINT" if "OTEL_EXPORTER_OTLP_ENDPOINT" in env else "config"
    )
    if not base:
        base = "http://localhost:4317" if grpc else "http://localhost:4318"
        sources["endpoint"] = "default"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise ConfigError(
            f"expected an http(s) URL, got {base!r}", path=_where(sources["endpoint"], "endpoint")
        )

    def signal(path: str, variable: str) -> str:
        if variable in env:
            return env[variable]
        return base if grpc else f"{base.removesuffix('/')}/{path}"

    traces = signal("v1/traces", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env:
        sources["traces_endpoint"] = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    return (
        traces,
        signal("v1/metrics", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        signal("v1/logs", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
    )


def _parse_pairs(text: str, variable: str) -> dict[str, str]:
    """Parse the ``k=v,k2=v2`` lists of OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value pairs, got {item.strip()!r}", path=variable)
        pairs[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return pairs


def _exporters(env: Mapping[str, str], variable: str, default: tuple[str, ...]) -> tuple[str, ...]:
    names = (
        tuple(n.strip().lower() for n in env[variable].split(",") if n.strip())
        if variable in env
        else default
    )
    # "none" anywhere means no exporter, as the specification says.
    return () if "none" in names else names


def _sampler_arg(sampler: str, config: TelemetryConfig, env: Mapping[str, str]) -> float | None:
    if not sampler.endswith("traceidratio"):
        return None
    variable = "OTEL_TRACES_SAMPLER_ARG"
    raw: object = env.get(variable, config.sampler_arg)
    if raw is None:
        return 1.0
    try:
        ratio = float(raw)  # type: ignore[arg-type]  # str from env or float from config
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        where = variable if variable in env else "components.telemetry.sampler_arg"
        raise ConfigError(f"expected a ratio between 0 and 1, got {raw!r}", path=where)
    return ratio
