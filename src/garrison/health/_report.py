"""How check results combine into a probe's answer, and how that answer is rendered.

A check reports ``pass``, ``warn`` or ``fail`` with the values it observed
(latency of its check, writer lag, mailbox depth, …). Aggregation is worst-of,
except that a failing component which is not critical only makes the whole
``warn``.

A probe's answer is a :class:`HealthReport`, rendered in the
``application/health+json`` shape of the IETF draft "Health Check Response
Format for HTTP APIs" (draft-inadarei-api-health-check): a top-level
``status``, and ``checks`` keyed by component. The terse form (the default)
carries one entry per component with its status and, when it is not ``pass``,
a stable ``reason`` code (``check_timeout``, ``not_running``…; the list is in
docs/operations.md): never the text of an error, which may hold paths, keys
or whatever a check's exception said. The verbose form adds that text as
``output``, the lifecycle state, criticality, the check's duration and time,
and one ``"<component>:<measurement>"`` key per observed value with
``observedValue`` / ``observedUnit``, as the draft recommends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from garrison.runtime import CheckResult, HealthStatus, worst

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "ComponentHealth",
    "HEALTH_CONTENT_TYPE",
    "HealthReport",
    "ProbeKind",
    "aggregate",
]

#: The media type of the draft health-check response format.
HEALTH_CONTENT_TYPE = "application/health+json"

#: The three probes, as Kubernetes names them.
ProbeKind = Literal["live", "ready", "startup"]


_RESULT_REASONS = {
    HealthStatus.PASS: "",
    HealthStatus.WARN: "check_warned",
    HealthStatus.FAIL: "check_failed",
}


def aggregate(entries: Iterable[tuple[HealthStatus, bool]]) -> HealthStatus:
    """Combine ``(status, critical)`` pairs: worst-of, a non-critical failure counts as ``warn``.

    >>> aggregate([(HealthStatus.PASS, True), (HealthStatus.FAIL, False)])
    <HealthStatus.WARN: 'warn'>
    """
    return worst(
        HealthStatus.WARN if status is HealthStatus.FAIL and not critical else status
        for status, critical in entries
    )


# Observed-value names end in their unit (``latency_ms``, ``lag_s``); the suffix
# becomes the draft's ``observedUnit`` and the rest the measurement name.
_UNIT_SUFFIXES = (
    ("_ms", "ms"),
    ("_us", "us"),
    ("_s", "s"),
    ("_seconds", "s"),
    ("_bytes", "bytes"),
    ("_percent", "percent"),
)


def _measurement(key: str) -> tuple[str, str | None]:
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], unit
    return key, None


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """One entry of a report: a component (or a runtime part) as one probe saw it.

    ``status`` is the component's own status and ``reason`` its stable code
    when it is not ``pass`` (``output`` is the human text, shown only in the
    verbose form); ``critical`` says whether a failure fails the probe or
    only warns. ``state`` is the lifecycle state
    (``running``, ``restarting``…) and ``component_type`` is ``"component"``
    for application components and ``"system"`` for the runtime's own parts
    (the supervisor, the event loop). ``duration_ms`` is how long the check took
    and ``cached`` whether this answer came from the short-lived check cache.
    """

    name: str
    status: HealthStatus
    critical: bool = True
    state: str = ""
    observed: Mapping[str, Any] = field(default_factory=dict)
    output: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: float | None = None
    cached: bool = False
    component_type: str = "component"
    reason: str = ""

    @classmethod
    def from_result(
        cls,
        name: str,
        result: CheckResult,
        *,
        critical: bool = True,
        state: str = "",
        time: datetime | None = None,
        duration_ms: float | None = None,
        cached: bool = False,
        reason: str | None = None,
    ) -> ComponentHealth:
        """Wrap a component's :class:`CheckResult`.

        ``reason`` defaults to ``check_failed`` / ``check_warned`` for a
        failing / warning result (the check's own text stays in ``output``).
        """
        if reason is None:
            reason = _RESULT_REASONS[result.status]
        return cls(
            name,
            result.status,
            critical,
            state,
            result.observed,
            result.output,
            time if time is not None else datetime.now(UTC),
            duration_ms,
            cached,
            reason=reason,
        )

    def entries(self, *, verbose: bool) -> dict[str, list[dict[str, Any]]]:
        """This component's ``checks`` entries in the health+json shape."""
        main: dict[str, Any] = {"status": self.status.value}
        if self.reason and self.status is not HealthStatus.PASS:
            main["reason"] = self.reason
        if self.output and verbose:
            main["output"] = self.output
        if not verbose:
            return {self.name: [main]}
        stamp = _timestamp(self.time)
        main.update(componentType=self.component_type, critical=self.critical, time=stamp)
        if self.state:
            main["state"] = self.state
        if self.duration_ms is not None:
            main["durationMs"] = round(self.duration_ms, 3)
        if self.cached:
            main["cached"] = True
        out: dict[str, list[dict[str, Any]]] = {self.name: [main]}
        for key, value in self.observed.items():
            measurement, unit = _measurement(key)
            entry: dict[str, Any] = {
                "componentType": self.component_type,
                "status": self.status.value,
                "observedValue": value,
                "time": stamp,
            }
            if unit is not None:
                entry["observedUnit"] = unit
            out[f"{self.name}:{measurement}"] = [entry]
        return out


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The answer of one probe: an overall status and what each part reported.

    ``reason`` is a stable code for the whole report when one cause explains
    it (``stopping``); ``output`` its human text (verbose form only).

    ``http_status`` is 200 for ``pass`` and ``warn`` and 503 for ``fail``, as
    Kubernetes and load balancers expect. :meth:`to_dict` / :meth:`to_json`
    render the ``application/health+json`` body.

    >>> report = HealthReport("ready", HealthStatus.PASS)
    >>> report.http_status, report.to_dict()
    (200, {'status': 'pass', 'description': 'garrison ready probe', 'checks': {}})
    """

    probe: ProbeKind
    status: HealthStatus
    checks: tuple[ComponentHealth, ...] = ()
    output: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True for ``pass`` and ``warn``: the probe succeeds."""
        return self.status is not HealthStatus.FAIL

    @property
    def http_status(self) -> int:
        """200 when the probe succeeds (pass or warn), 503 when it fails."""
        return 200 if self.ok else 503

    def check(self, name: str) -> ComponentHealth:
        """The entry for ``name``; ``KeyError`` when this report has none."""
        for entry in self.checks:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def to_dict(self, *, verbose: bool = False) -> dict[str, Any]:
        """The health+json document: terse by default, every detail when ``verbose``.

        The terse form holds statuses and reason codes only: safe to serve
        where anyone may read it. Keep ``verbose`` off public ports.
        """
        doc: dict[str, Any] = {
            "status": self.status.value,
            "description": f"garrison {self.probe} probe",
        }
        if self.reason:
            doc["reason"] = self.reason
        if verbose:
            if self.output:
                doc["output"] = self.output
            doc["time"] = _timestamp(self.time)
        checks: dict[str, list[dict[str, Any]]] = {}
        for entry in self.checks:
            checks.update(entry.entries(verbose=verbose))
        doc["checks"] = checks
        return doc

    def to_json(self, *, verbose: bool = False) -> bytes:
        """:meth:`to_dict` as UTF-8 JSON; observed values JSON cannot hold become strings."""
        return orjson.dumps(self.to_dict(verbose=verbose), default=str)
