"""What the quality stage hands on: :class:`QualityResult` and the quarantine and issues tables."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.display import html_table, verdict_html
from tracer_kit.engine import POLARS, Engine
from tracer_kit.quality.names import Scratch
from tracer_kit.types import ISSUE_COLUMNS, Issue, by_severity

__all__ = ["QUARANTINE_SCHEMA", "QualityResult", "issues_frame"]

QUARANTINE_SCHEMA = {
    "stage": pl.String(),
    "source_row": pl.Int64(),
    "source_line": pl.Int64(),
    "raw": pl.String(),
    "reasons": pl.List(pl.String()),
    "failures": pl.List(pl.Struct({"reason": pl.String(), "column": pl.String()})),
}


@dataclass
class QualityResult:
    """Everything the quality stage found: counts, score and parts, issues, valid rows, quarantine.

    The rows live in Parquet under ``work_dir`` (written once, streamed, never all in memory):
    ``bronze.parquet`` (the file's text, original column names), ``bronze.rejects.parquet``
    (records rejected at ingest, when any), ``checked.parquet`` (typed values and check
    flags) and ``quarantine.parquet``. :meth:`valid_lazy` scans the valid
    rows; ``valid`` and ``quarantine`` read them into memory.
    """

    blueprint: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    score: float
    score_parts: dict[str, float]
    issues: list[Issue]
    reference_date: dt.date | None
    run_date: dt.date
    date_formats: dict[str, dict[str, int]]
    column_map: dict[str, str]
    gate_failures: list[str]
    work_dir: Path
    valid_columns: list[str]
    bronze_columns: list[str]
    rejects: pl.DataFrame
    #: How many values each field transform changed: ``{"field", "transform", "changed"}`` rows.
    transform_counts: list[dict[str, Any]] = field(default_factory=list)
    #: Personal fields (``pii``): their values are never shown.
    personal: list[str] = field(default_factory=list)
    #: The engine that ran the stage (on Spark the files are part-file folders).
    engine: Engine = field(default=POLARS, repr=False)
    _keepalive: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        gate = "passed" if self.passed else "FAILED"
        return (
            f"QualityResult({self.blueprint!r}, gate {gate}, score {self.score:.1f}, "
            f"{self.rows_in} in / {self.rows_valid} valid / {self.rows_quarantined} quarantined, "
            f"{len(self.issues)} issues)"
        )

    def _repr_html_(self) -> str:
        gate = {
            "passed": self.passed,
            "headline": "Quality gate passed" if self.passed else "Quality gate FAILED",
            "reasons": list(self.gate_failures),
        }
        parts = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.score_parts.items())
        return (
            verdict_html(gate)
            + f"<p>Quality score <b>{self.score:.1f}</b> ({html.escape(parts)}); "
            f"{self.rows_in:,} rows in, {self.rows_valid:,} valid, "
            f"{self.rows_quarantined:,} quarantined.</p>"
            + html_table([i.to_dict() for i in self.issues], list(ISSUE_COLUMNS))
        )

    @property
    def passed(self) -> bool:
        """Whether the gate lets the run go on."""
        return not self.gate_failures

    @property
    def bronze_path(self) -> Path:
        """The file's records as text (``source_row``, ``source_line``, original columns)."""
        return self.work_dir / "bronze.parquet"

    @property
    def bronze_rejects_path(self) -> Path | None:
        """Records rejected at ingest as bronze (``raw`` = ``{"_line": text}``), or None."""
        path = self.work_dir / "bronze.rejects.parquet"
        return path if path.exists() else None

    @property
    def quarantine_path(self) -> Path:
        """Quarantined records: ``stage``, ``source_row``, ``source_line``, ``raw`` JSON, ``reasons``."""
        return self.work_dir / "quarantine.parquet"

    def valid_lazy(self) -> Any:
        """The valid typed rows in ``source_row`` order, as a lazy scan (on Spark: a PartitionFrame)."""
        checked = self.engine.scan(self.work_dir / "checked.parquet")
        return checked.filter(~Scratch.BAD.col()).select(self.valid_columns)

    @property
    def valid(self) -> pl.DataFrame:
        """The valid typed rows (read into memory)."""
        return self.valid_lazy().collect(engine="streaming")

    @property
    def quarantine(self) -> pl.DataFrame:
        """The quarantined records (read into memory; Spark's part files in ``source_row`` order)."""
        return self.engine.read_small(self.quarantine_path)

    def issues_frame(self) -> pl.DataFrame:
        """The issues as a table, most severe first."""
        return issues_frame(self.issues)


def issues_frame(issues: Sequence[Issue]) -> pl.DataFrame:
    """A polars table of issues (severity, column, check, observed, threshold, rows, message)."""
    schema = {
        "severity": pl.String(),
        "column": pl.String(),
        "check": pl.String(),
        "observed": pl.Float64(),
        "threshold": pl.Float64(),
        "rows_affected": pl.Int64(),
        "message": pl.String(),
    }
    rows = [{k: getattr(i, k) for k in schema} for i in by_severity(issues)]
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- compatibility
