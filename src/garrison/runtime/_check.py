"""What a component's health check returns: a status and what it observed.

A check reports ``pass``, ``warn`` or ``fail`` with the values it observed
(latency of its check, writer lag, mailbox depth, …). Probes that combine the
checks of a runtime, and the HTTP serving of them, are in :mod:`garrison.health`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["CheckResult", "HealthStatus", "worst"]


class HealthStatus(enum.StrEnum):
    """The three states of the ``application/health+json`` format, best first."""

    PASS = "pass"  # noqa: S105 - a health status, not a password
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        """0 for pass, 1 for warn, 2 for fail: larger is worse."""
        return _RANK[self]


_RANK = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One component's health: a status, what was observed, and a short human note.

    >>> CheckResult.passing(latency_ms=0.4)
    CheckResult(status=<HealthStatus.PASS: 'pass'>, observed={'latency_ms': 0.4}, output='')
    """

    status: HealthStatus
    observed: Mapping[str, Any] = field(default_factory=dict)
    output: str = ""

    @classmethod
    def passing(cls, **observed: Any) -> CheckResult:
        """A ``pass`` result with the given observed values."""
        return cls(HealthStatus.PASS, observed)

    @classmethod
    def warning(cls, output: str, **observed: Any) -> CheckResult:
        """A ``warn`` result: working, but something deserves attention."""
        return cls(HealthStatus.WARN, observed, output)

    @classmethod
    def failing(cls, output: str, **observed: Any) -> CheckResult:
        """A ``fail`` result: the component cannot do its job."""
        return cls(HealthStatus.FAIL, observed, output)


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """The worst of ``statuses`` (``pass`` when there are none)."""
    result = HealthStatus.PASS
    for status in statuses:
        if status.rank > result.rank:
            result = status
    return result
