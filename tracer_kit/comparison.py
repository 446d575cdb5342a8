"""Two runs side by side: ``tracer compare RUN_A RUN_B`` / :func:`compare`.

What changed from run A to run B: the processed columns (added, removed, retyped), the row
counts, the quality score and its parts, each rule's failed share, and per column the
drift (PSI over the same bins as the report's drift section, means and null rates). It
reads what the runs stored, so it works across two exports of one dataset as well as
across two datasets.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer_kit.display import html_table
from tracer_kit.errors import ConfigError
from tracer_kit.failing import run_checks_failed
from tracer_kit.quality import SCORE_WEIGHTS
from tracer_kit.report import drift
from tracer_kit.warehouse import DEFAULT_WAREHOUSE, run_profiles, run_row
from tracer_kit.writing import write_text_file

__all__ = ["COUNTS", "Comparison", "compare"]

#: The counts compared, in the order shown.
COUNTS = ("rows_in", "rows_valid", "rows_quarantined", "rows_out", "quality_score")


@dataclass
class Comparison:
    """What changed from run ``a`` to run ``b`` (see the module docstring); each part a list of rows."""

    a: dict[str, Any]
    b: dict[str, Any]
    schema: list[dict[str, Any]] = field(default_factory=list)
    counts: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:
        shifted = sum(1 for d in self.drift if d.get("level") == "major")
        return (
            f"Comparison({self.a['run_id']} -> {self.b['run_id']}: {len(self.schema)} column "
            f"change(s), {len(self.rules)} rule(s), {shifted} major shift(s))"
        )

    def sections(self) -> list[tuple[str, list[dict[str, Any]], list[str]]]:
        """(title, rows, columns) of each part, in the order shown."""
        return [
            ("Columns", self.schema, ["column", "change", "type_a", "type_b"]),
            ("Counts and score", self.counts, ["measure", "a", "b", "change"]),
            ("Rules: failed share", self.rules, ["check", "column", "a", "b", "change"]),
            (
                "Drift",
                self.drift,
                ["column", "mean_before", "mean_now", "null_rate_change", "psi", "level"],
            ),
        ]

    def to_html(self) -> str:
        """A self-contained HTML page of the comparison."""
        title = f"{self.a['run_id']} ({self.a['blueprint']}) → {self.b['run_id']} ({self.b['blueprint']})"
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>compare {html.escape(title)}</title>",
            "<style>body{font:14px/1.45 sans-serif;margin:24px 32px;color:#1f2933}"
            "table{border-collapse:collapse;margin-bottom:16px}td,th{border-bottom:1px solid #e4e7eb}"
            "</style></head><body>",
            f"<h1>Compare runs</h1><p>{html.escape(title)}</p>",
            self._repr_html_(),
            "</body></html>",
        ]
        return "".join(parts)

    def _repr_html_(self) -> str:
        out = []
        for title, rows, columns in self.sections():
            body = (
                html_table(rows, columns)
                if rows
                else "<p>No change.</p>"
                if title == "Columns"
                else "<p>None.</p>"
            )
            out.append(f"<h3>{html.escape(title)}</h3>{body}")
        return "".join(out)

    def write_html(self, path: str | Path, *, force: bool = False) -> Path:
        """Write :meth:`to_html` to ``path``; never over an existing file unless ``force``."""
        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm"):
            raise ConfigError(f"--out {path}: a comparison is written as .html")
        if target.exists() and not force:
            raise ConfigError(f"--out {path} exists; add --force to overwrite it")
        return write_text_file(target, self.to_html())


def _schema(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    a = {p["column"]: p["dtype"] for p in before if p["column"] != "source_row"}
    b = {p["column"]: p["dtype"] for p in after if p["column"] != "source_row"}
    rows = []
    for column in dict.fromkeys([*a, *b]):
        if column not in b:
            change = "removed"
        elif column not in a:
            change = "added"
        elif a[column] != b[column]:
            change = "retyped"
        else:
            continue
        rows.append(
            {"column": column, "change": change, "type_a": a.get(column), "type_b": b.get(column)}
        )
    return rows


def _counts(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    measures = [(k, a.get(k), b.get(k)) for k in COUNTS]
    measures += [
        (
            f"score part: {part}",
            (a["score_parts"] or {}).get(part),
            (b["score_parts"] or {}).get(part),
        )
        for part in SCORE_WEIGHTS
    ]
    for name, x, y in measures:
        change = None if x is None or y is None else y - x
        rows.append({"measure": name, "a": x, "b": y, "change": change})
    return rows


def _rules(a: dict[str, Any], b: dict[str, Any], warehouse: str | Path) -> list[dict[str, Any]]:
    shares = []
    for run in (a, b):
        counts = run_checks_failed(run["run_id"], warehouse=warehouse)
        rows_in = run["rows_in"] or 0
        shares.append(
            {(c, col): n / rows_in if rows_in else None for c, col, n in counts.iter_rows()}
        )
    out = []
    for key in dict.fromkeys([*shares[0], *shares[1]]):
        x, y = shares[0].get(key, 0.0), shares[1].get(key, 0.0)
        change = None if x is None or y is None else y - x
        out.append({"check": key[0], "column": key[1], "a": x, "b": y, "change": change})
    return sorted(out, key=lambda r: -abs(r["change"] or 0))


def compare(run_a: str, run_b: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Comparison:
    """What changed from ``run_a`` to ``run_b``: columns, counts and score, rules' failed shares, drift.

    Raises
    ------
    TracerError
        When either run is not in the warehouse.
    """
    a, b = run_row(run_a, warehouse=warehouse), run_row(run_b, warehouse=warehouse)
    before = run_profiles(run_a, warehouse=warehouse)
    after = run_profiles(run_b, warehouse=warehouse)
    return Comparison(
        a={k: a[k] for k in ("run_id", "blueprint", "dataset", "state", "input_path")},
        b={k: b[k] for k in ("run_id", "blueprint", "dataset", "state", "input_path")},
        schema=_schema(before, after),
        counts=_counts(a, b),
        rules=_rules(a, b, warehouse),
        drift=[_dated(d) for d in drift(after, before, b["rows_out"] or 0, a["rows_out"] or 0)],
    )


def _dated(row: dict[str, Any]) -> dict[str, Any]:
    """A date column's means as dates (profiles keep them as days since 1970-01-01)."""
    if row.get("dtype") != "Date":
        return row
    epoch = dt.date(1970, 1, 1)
    as_date = {
        k: epoch + dt.timedelta(days=round(row[k]))
        for k in ("mean_before", "mean_now")
        if row.get(k) is not None
    }
    change = row.get("mean_change")
    return {**row, **as_date, "mean_change": None if change is None else f"{change:+.1f} days"}
