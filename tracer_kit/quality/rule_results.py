"""Every rule a run checked, like a test report: rows tested, passed, failed, and a verdict.

A *rule* is one thing a row can fail: a field's type, its required value, each group of its
constraints that share a reason (``>= 1, <= 100`` is one range), the identifier's
uniqueness, each row rule of the blueprint. The failed rows per rule come from the
quarantine (each failure keeps its reason and column); severity and threshold from the
issue that reports it. The dataset checks and the checks that quarantine nothing
(outliers, case variants) appear as the issues they raised. The report, the notebook and
the workbench show the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tracer_kit.blueprints import Blueprint, Field
from tracer_kit.blueprints.constraints import constraint_groups

__all__ = ["CAST_REASONS", "KIND_WORDS", "RuleResult", "rule_results"]

#: What a value of each kind must be, in the rules' words.
KIND_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "date": "a date",
    "datetime": "a date and time",
    "bool": "true or false",
}

#: The reasons a value of each kind fails to be read as that kind.
CAST_REASONS: dict[str, str] = {
    "int": "invalid_number",
    "float": "invalid_number",
    "date": "invalid_date",
    "datetime": "invalid_datetime",
    "bool": "invalid_boolean",
}

Verdict = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome. ``check`` and ``column`` are what ``tracer quarantine`` filters by."""

    rule: str
    check: str
    column: str | None
    tested: int
    failed: int
    severity: str | None
    threshold: float | None
    verdict: Verdict
    quarantines: bool  # whether failing rows are quarantined (else the rule only reports)

    @property
    def passed(self) -> int:
        """Rows that passed."""
        return self.tested - self.failed

    @property
    def failed_share(self) -> float:
        """Failed rows / rows tested (0 without rows)."""
        return self.failed / self.tested if self.tested else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result with ``passed`` and ``failed_share``, for tables."""
        return {
            "rule": self.rule,
            "check": self.check,
            "column": self.column,
            "tested": self.tested,
            "passed": self.passed,
            "failed": self.failed,
            "failed_share": self.failed_share,
            "severity": self.severity,
            "threshold": self.threshold,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class _Declared:
    rule: str
    reason: str
    column: str | None
    issue_check: str


def _field_rules(f: Field, identifier: str | None) -> list[_Declared]:
    out = []
    if f.required:
        out.append(_Declared(f"{f.name}: required", "missing_required", f.name, "completeness"))
    if f.kind in CAST_REASONS:
        out.append(
            _Declared(f"{f.name}: {KIND_WORDS[f.kind]}", CAST_REASONS[f.kind], f.name, "validity")
        )
    if f.kind == "date" and f.format is None:  # the day order is decided from the data
        out.append(_Declared(f"{f.name}: one day order", "ambiguous_date", f.name, "validity"))
    for reason, group in constraint_groups(f).items():
        # (a constraint the field does not set itself is its kind's validator: an email's)
        words = [
            c.words(v) if getattr(f, c.key) is not None else f"a valid {f.kind}" for c, v in group
        ]
        out.append(_Declared(f"{f.name}: {', '.join(words)}", reason, f.name, "validity"))
    if f.references is not None:
        out.append(
            _Declared(f"{f.name}: in {f.references}", "not_in_reference", f.name, "references")
        )
    if f.name == identifier:
        out.append(_Declared(f"{f.name}: unique", "duplicate_id", f.name, "uniqueness"))
    return out


def _declared(blueprint: Blueprint) -> list[_Declared]:
    out = [d for f in blueprint.fields for d in _field_rules(f, blueprint.identifier)]
    for rule in blueprint.rules:
        columns = ",".join(rule.columns)
        out.append(
            _Declared(f"{rule.reason}: {rule.description}", rule.reason, columns, rule.reason)
        )
    return out


def _issue_for(issues: Sequence[dict[str, Any]], check: str, column: str | None) -> dict | None:
    """The issue reporting a rule: by check and column (a row rule's issue by its name)."""
    per_field = check in ("validity", "completeness", "uniqueness", "references")
    for i in issues:
        if i["check"] == check and (i["column"] == column or not per_field):
            return i
    return None


def _verdict(failed: int, issue: dict[str, Any] | None) -> Verdict:
    if issue is not None and issue["severity"] in ("critical", "high"):
        return "fail"
    return "warn" if failed or issue is not None else "pass"


def rule_results(
    blueprint: Blueprint,
    rows_tested: int,
    failed: Iterable[tuple[str, str | None, int]],
    issues: Sequence[dict[str, Any]],
) -> list[RuleResult]:
    """The run's rules, declared ones first (in field order), then the other issues.

    ``failed`` holds ``(reason, column, rows)`` from the quarantine; ``issues`` the run's
    issues as mappings. A rule whose rows failed with no issue of its own (a share under
    its threshold) is a warning; one whose issue is high or critical a failure.
    """
    counts: dict[tuple[str, str | None], int] = {}
    for reason, column, rows in failed:
        counts[(reason, column)] = counts.get((reason, column), 0) + int(rows)
    out, used = [], set()
    for d in _declared(blueprint):
        n = counts.get((d.reason, d.column), 0)
        issue = _issue_for(issues, d.issue_check, d.column) if n else None
        used.add((d.reason, d.column))
        if issue is not None:
            used.add(("issue", id(issue)))
        out.append(
            RuleResult(
                rule=d.rule,
                check=d.reason,
                column=d.column,
                tested=rows_tested,
                failed=n,
                severity=issue["severity"] if issue else None,
                threshold=issue["threshold"] if issue else None,
                verdict=_verdict(n, issue),
                quarantines=True,
            )
        )
    for (reason, column), n in counts.items():  # a plugin check's reasons
        if (reason, column) not in used:
            out.append(RuleResult(reason, reason, column, rows_tested, n, None, None, "warn", True))
    for i in issues:  # what quarantines nothing: dataset checks, outliers, optional fields' gaps
        if ("issue", id(i)) in used:
            continue
        out.append(
            RuleResult(
                rule=i["message"],
                check=i["check"],
                column=i["column"],
                tested=rows_tested,
                failed=int(i["rows_affected"] or 0),
                severity=i["severity"],
                threshold=i["threshold"],
                verdict=_verdict(0, i),
                quarantines=False,
            )
        )
    return out
