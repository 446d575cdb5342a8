"""The quality score (weighted parts) and the gate that decides whether a run may go on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tracer_kit.config import Thresholds
from tracer_kit.errors import QualityGateError
from tracer_kit.types import SCORE_PARTS, SCORE_WEIGHTS, Issue, Severity  # (re-exported)

if TYPE_CHECKING:
    from tracer_kit.quality.result import QualityResult

__all__ = ["SCORE_PARTS", "SCORE_WEIGHTS", "gate", "quality_score", "raise_for_gate"]


def quality_score(parts: Mapping[str, float]) -> float:
    """100 x the weighted sum of the parts, rounded to 2 decimals."""
    return round(100 * sum(w * parts[k] for k, w in SCORE_WEIGHTS.items()), 2)


def _named(issue: Issue) -> str:
    return f"{issue.check} on {issue.column}" if issue.column else issue.check


def gate(issues: Sequence[Issue], score: float, thresholds: Thresholds) -> list[str]:
    """Why the run must stop (empty when it may go on): any critical, too many high, a low score.

    Each reason names the issues (check and column) behind it, most decisive first.
    """
    failures = []
    critical = [i for i in issues if i.severity == "critical"]
    high = [i for i in issues if i.severity == "high"]
    if critical:
        failures.append(
            f"{len(critical)} critical issue(s): "
            + "; ".join(f"{_named(i)}: {i.message}" for i in critical)
        )
    if len(high) > thresholds.max_high:
        failures.append(
            f"{len(high)} high issues (at most {thresholds.max_high} allowed: "
            + ", ".join(_named(i) for i in high)
            + ")"
        )
    if score < thresholds.min_score:
        worst = [i for i in issues if Severity(i.severity).rank <= Severity.HIGH.rank][:5]
        behind = f" ({', '.join(_named(i) for i in worst)})" if worst else ""
        failures.append(f"quality score {score:.1f} is under {thresholds.min_score:g}{behind}")
    return failures


def raise_for_gate(result: QualityResult, path: str | Path | None = None) -> None:
    """Raise :class:`QualityGateError` listing the failures and issues when the gate is shut."""
    if result.passed:
        return
    where = f"{path}: " if path else ""
    msg = f"{where}quality gate failed: " + "; ".join(result.gate_failures)
    raise QualityGateError(msg, issues=result.issues, path=path)


# --------------------------------------------------------------------------- public helpers
