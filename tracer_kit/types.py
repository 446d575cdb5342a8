"""Value types shared by the stages, each declared once: severities, run states, issues, run results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import Field as ModelField

__all__ = [
    "ACTIVE_STATES",
    "ISSUE_COLUMNS",
    "Issue",
    "RunOutputs",
    "RunResult",
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


class RunOutputs(BaseModel):
    """Where a run's files and tables are (absent keys: not written by this run).

    It reads and writes as the plain ``{name: path}`` mapping the warehouse keeps, so runs
    recorded by older releases load unchanged; ``extra`` keys (a custom output) are kept.
    """

    model_config = ConfigDict(extra="allow")

    warehouse: str | None = None
    table: str | None = None
    parquet: str | None = None
    parquet_sha256: str | None = None
    report: str | None = None
    model: str | None = None
    model_sha256: str | None = None
    preprocessor: str | None = None
    preprocessor_json: str | None = None
    predictions: str | None = None
    predictor: str | None = None
    bronze: str | None = None
    quarantine: str | None = None
    staging: str | None = None
    log: str | None = None
    notebook: str | None = None
    notebook_html: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The path of output ``key`` (as a mapping would)."""
        value = self.as_dict().get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def items(self) -> Any:
        """(name, path) of every output written."""
        return self.as_dict().items()

    def keys(self) -> Any:
        """Names of the outputs written."""
        return self.as_dict().keys()

    def as_dict(self) -> dict[str, str]:
        """The outputs written, as the warehouse keeps them."""
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


def _scan(path: str | None) -> Any:
    """A lazy scan of a run's Parquet output (a file, or the Spark engine's folder), or None."""
    import polars as pl

    if not path:
        return None
    p = Path(path)
    if p.is_file():
        return pl.scan_parquet(p)
    if p.is_dir() and next(p.glob("*.parquet"), None) is not None:
        return pl.scan_parquet(p / "*.parquet")
    return None


class RunResult(BaseModel):
    """What a run did: state, counts, score and its parts, issues, features, timings, outputs.

    ``frame`` is the processed polars DataFrame (None with ``return_frame=False`` or when
    the run did not complete).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    blueprint: str
    state: str
    input_path: str
    dataset: str | None = None
    input_sha256: str | None = None
    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_out: int = 0
    quality_score: float | None = None
    score_parts: dict[str, float] = ModelField(default_factory=dict)
    issues: list[Issue] = ModelField(default_factory=list)
    features_created: list[str] = ModelField(default_factory=list)
    stage_seconds: dict[str, float] = ModelField(default_factory=dict)
    params: dict[str, Any] = ModelField(default_factory=dict)
    outputs: RunOutputs = ModelField(default_factory=RunOutputs)
    error: str | None = None
    frame: Any = ModelField(default=None, repr=False, exclude=True)

    def __repr__(self) -> str:
        return f"RunResult({self.summary()}, {len(self.issues)} issues)"

    def __str__(self) -> str:
        return self.__repr__()

    @property
    def quarantine(self) -> Any:
        """The run's quarantined rows (reasons, raw records) as a lazy frame; None when none
        were kept beside its rows (a failed run's are in the warehouse: ``tracer quarantine``).
        """  # noqa: D205
        return _scan(self.outputs.get("quarantine"))

    @property
    def predictions(self) -> Any:
        """The run's predictions as a lazy frame; None when the run made none."""
        return _scan(self.outputs.get("predictions"))

    def _repr_html_(self) -> str:
        from tracer_kit.report import html_table, show_summary

        return show_summary(self).data + html_table(self.issues, list(ISSUE_COLUMNS))

    def summary(self) -> str:
        """One line for people: state, counts, score."""
        score = f"{self.quality_score:.1f}" if self.quality_score is not None else "-"
        return (
            f"{self.run_id} {self.blueprint} {self.state}: {self.rows_in} rows in, "
            f"{self.rows_valid} valid, {self.rows_quarantined} quarantined, {self.rows_out} out, "
            f"score {score}"
        )
