"""The health+json report: aggregation, terse and verbose shapes, HTTP status."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from garrison.health._report import ComponentHealth, HealthReport, aggregate
from garrison.runtime._check import CheckResult, HealthStatus

P, W, F = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


def test_aggregate_is_worst_of_and_a_non_critical_failure_only_warns() -> None:
    assert aggregate([]) is P
    assert aggregate([(P, True), (W, True)]) is W
    assert aggregate([(P, True), (F, False)]) is W
    assert aggregate([(F, False), (F, True)]) is F
    assert aggregate([(W, False)]) is W


def test_http_status_is_200_for_pass_and_warn_and_503_for_fail() -> None:
    assert HealthReport("ready", P).http_status == 200
    assert HealthReport("ready", W).http_status == 200
    assert HealthReport("ready", F).http_status == 503
    assert not HealthReport("live", F).ok


def _report() -> HealthReport:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    db = ComponentHealth.from_result(
        "database",
        CheckResult.passing(latency_ms=1.5, mailbox_depth=3),
        state="running",
        time=moment,
        duration_ms=1.5,
    )
    cache = ComponentHealth.from_result(
        "cache",
        CheckResult.failing("redis unreachable"),
        critical=False,
        state="running",
        time=moment,
    )
    return HealthReport("ready", W, (db, cache), time=moment)


def test_terse_report_has_a_status_per_component_and_a_reason_code_but_no_text() -> None:
    doc = orjson.loads(_report().to_json())
    assert doc == {
        "status": "warn",
        "description": "garrison ready probe",
        "checks": {
            "database": [{"status": "pass"}],
            "cache": [{"status": "fail", "reason": "check_failed"}],
        },
    }
    verbose = orjson.loads(_report().to_json(verbose=True))
    assert verbose["checks"]["cache"][0]["output"] == "redis unreachable"
    assert verbose["checks"]["cache"][0]["reason"] == "check_failed"


def test_verbose_report_has_observed_values_units_and_times_in_draft_style() -> None:
    doc = orjson.loads(_report().to_json(verbose=True))
    assert doc["time"] == "2026-01-02T03:04:05.678Z"
    db = doc["checks"]["database"][0]
    assert db == {
        "status": "pass",
        "componentType": "component",
        "critical": True,
        "time": "2026-01-02T03:04:05.678Z",
        "state": "running",
        "durationMs": 1.5,
    }
    assert doc["checks"]["database:latency"] == [
        {
            "componentType": "component",
            "status": "pass",
            "observedValue": 1.5,
            "observedUnit": "ms",
            "time": "2026-01-02T03:04:05.678Z",
        }
    ]
    # A value without a unit suffix has no observedUnit.
    assert "observedUnit" not in doc["checks"]["database:mailbox_depth"][0]
    assert doc["checks"]["database:mailbox_depth"][0]["observedValue"] == 3
    assert doc["checks"]["cache"][0]["critical"] is False


def test_observed_values_json_cannot_hold_are_rendered_as_text() -> None:
    entry = ComponentHealth("x", P, observed={"path": object()})
    doc = orjson.loads(HealthReport("live", P, (entry,)).to_json(verbose=True))
    assert doc["checks"]["x:path"][0]["observedValue"].startswith("<object object")


def test_check_looks_entries_up_by_name() -> None:
    report = _report()
    assert report.check("cache").output == "redis unreachable"
