"""Value types shared by the stages: severities and run states, each declared once."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TypeVar

__all__ = ["ACTIVE_STATES", "RunState", "Severity", "by_severity"]


class Severity(StrEnum):
    """How bad an issue is, most severe first (the order the gate and every listing use)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical, 3 for low."""
        return list(Severity).index(self)


class RunState(StrEnum):
    """A run's life: PENDING -> IN_PROGRESS -> COMPLETED, FAILED or CANCELLED."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


#: States of a run that may still be going (its process decides).
ACTIVE_STATES = (RunState.PENDING, RunState.IN_PROGRESS)

T = TypeVar("T")


def by_severity(issues: Iterable[T]) -> list[T]:
    """Issues (objects or dicts) most severe first, keeping their order within a severity."""

    def severity(issue: Any) -> str:
        return issue["severity"] if isinstance(issue, dict) else issue.severity

    return sorted(issues, key=lambda i: Severity(severity(i)).rank)
