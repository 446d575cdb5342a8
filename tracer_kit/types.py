"""Value types shared by the stages, each declared once: severities, run states, issues, score parts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "ACTIVE_STATES",
    "ISSUE_COLUMNS",
    "SCORE_PARTS",
    "SCORE_WEIGHTS",
    "Issue",
    "RunState",
    "Severity",
    "by_severity",
]


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


#: The columns of an issues table, in display order.
ISSUE_COLUMNS = ("severity", "column", "check", "observed", "threshold", "rows_affected", "message")


@dataclass
class Issue:
    """One finding: what, where, how bad, how many rows, and up to five example rows."""

    severity: str
    column: str | None
    check: str
    observed: float | None
    threshold: float | None
    rows_affected: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity).value  # a known severity, stored as plain text

    def to_dict(self) -> dict[str, Any]:
        """The issue as JSON-like types (as the warehouse keeps it)."""
        return asdict(self)

    # An issue also reads like the mapping the warehouse stores: ``issue["check"]``.
    def __getitem__(self, key: str) -> Any:
        if key not in ISSUE_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """A field by name, or ``default``."""
        return getattr(self, key) if key in ISSUE_FIELDS else default

    def keys(self) -> tuple[str, ...]:
        """The field names."""
        return ISSUE_FIELDS


#: Every field of an issue, in order.
ISSUE_FIELDS = (*ISSUE_COLUMNS[:-1], "examples", "message")


#: The parts of the quality score, in the formula's order, with their weights.
SCORE_WEIGHTS = {"completeness": 0.4, "uniqueness": 0.2, "validity": 0.3, "consistency": 0.1}
SCORE_PARTS = tuple(SCORE_WEIGHTS)
