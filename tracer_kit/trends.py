"""Runs across time: listed with filters, per dataset, and summed over a window.

What the server's ``GET /runs``, ``/datasets``, ``/datasets/{name}/history`` and
``/analytics/summary`` answer, read from the warehouse's ``runs`` table in one short read
each. A dataset's history carries, per run, its score and parts, its rows, and its drift
against the dataset's previous run (the largest PSI over the columns both profiled, from
the stored histograms, as the report computes it).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.errors import TracerError
from tracer_kit.report import drift
from tracer_kit.types import SCORE_PARTS
from tracer_kit.warehouse import (
    DEFAULT_WAREHOUSE,
    connect,
    fetched_dicts,
    open_warehouse,
    run_profiles,
)

__all__ = [
    "RUN_COLUMNS",
    "dataset_history",
    "datasets",
    "list_runs",
    "run_context",
    "runs_summary",
]

#: SQL: the run stopped at its quality gate (its record's verdict).
_GATE_FAILED = "(params->>'$.gate.passed') = 'false'"

#: Runs read before the first of the ``last`` shown, to find a completed one to compare with.
_LOOK_BACK = 20

#: The columns of a run in a listing (``GET /runs``).
RUN_COLUMNS = (
    "run_id",
    "blueprint",
    "dataset",
    "state",
    "input_path",
    "started_at",
    "finished_at",
    "rows_in",
    "rows_valid",
    "rows_quarantined",
    "rows_out",
    "quality_score",
    "error",
)


def _opened(warehouse: str | Path) -> bool:
    if not Path(warehouse).exists():
        return False
    open_warehouse(warehouse)
    return True


def list_runs(
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    blueprint: str | None = None,
    dataset: str | None = None,
    state: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """How many runs match, and one page of them, newest first."""
    if not Path(warehouse).exists():
        return 0, []
    where, params = ["TRUE"], []
    for column, value in (("blueprint", blueprint), ("dataset", dataset), ("state", state)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("started_at >= ?")
        params.append(since)
    clause = " AND ".join(where)
    with connect(warehouse, read_only=True) as con:
        total = con.execute(f"SELECT count(*) FROM runs WHERE {clause}", params).fetchall()[0][0]
        page = con.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE {clause} "
            "ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        ).fetchall()
    return int(total), [dict(zip(RUN_COLUMNS, row, strict=True)) for row in page]


def datasets(*, warehouse: str | Path = DEFAULT_WAREHOUSE) -> list[dict[str, Any]]:
    """Each dataset: its blueprint, how many runs, and its latest run's verdict."""
    if not _opened(warehouse):
        return []
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            """
            SELECT dataset, arg_max(blueprint, started_at), count(*), max(started_at),
                   arg_max(run_id, started_at), arg_max(state, started_at),
                   arg_max(quality_score, started_at), arg_max(rows_out, started_at)
            FROM runs GROUP BY dataset ORDER BY dataset
            """
        ).fetchall()
    keys = ("dataset", "blueprint", "runs", "last_run_at", "last_run", "state", "score", "rows")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _parts(text: str | None) -> dict[str, float]:
    parts = json.loads(text) if text else {}
    return {k: parts[k] for k in SCORE_PARTS if k in parts}


def _largest_drift(
    run: dict[str, Any], before: dict[str, Any] | None, warehouse: str | Path
) -> tuple[float | None, str | None]:
    if before is None or not run["rows_in"] or not before["rows_in"]:
        return None, None
    rows = drift(
        run_profiles(run["run_id"], warehouse=warehouse),
        run_profiles(before["run_id"], warehouse=warehouse),
        run["rows_in"],
        before["rows_in"],
    )
    scored = [r for r in rows if r["psi"] is not None]
    if not scored:
        return None, None
    top = max(scored, key=lambda r: r["psi"])
    return float(top["psi"]), str(top["column"])


def dataset_history(
    dataset: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE, last: int | None = None
) -> pl.DataFrame:
    """One row per run of ``dataset``, oldest first: state, rows, score and its parts, drift.

    ``drift_psi`` is the largest PSI against the dataset's previous completed run, over the
    columns both profiled (``drift_column`` names it); None for the first run. ``last``: only
    the latest runs (the first of them still compared with the completed run before it).

    Raises
    ------
    TracerError
        When the warehouse holds no run of that dataset.
    """
    if not _opened(warehouse):
        raise TracerError(f"no warehouse at {warehouse}; run `tracer run` first")
    with connect(warehouse, read_only=True) as con:
        cur = con.execute(
            "SELECT run_id, blueprint, state, started_at, rows_in, rows_quarantined, rows_out, "
            f"quality_score, score_parts, error, {_GATE_FAILED} AS gate_failed "
            "FROM runs WHERE dataset = ? "
            "ORDER BY started_at DESC, run_id DESC LIMIT ?",
            [dataset, 2**62 if last is None else last + _LOOK_BACK],
        )
        runs = fetched_dicts(cur)[::-1]
    if not runs:
        raise TracerError(f"no runs of a dataset called {dataset!r}; `tracer runs` lists them")
    shown = len(runs) if last is None else last
    out, previous = [], None
    for index, run in enumerate(runs):
        if index < len(runs) - shown:  # (read only to find the completed run before the first)
            previous = run if run["state"] == "COMPLETED" else previous
            continue
        psi, column = _largest_drift(run, previous, warehouse)
        parts = _parts(run.pop("score_parts"))
        run["gate_failed"] = bool(run["gate_failed"])
        scores = {f"part_{k}": parts.get(k) for k in SCORE_PARTS}
        out.append({**run, **scores, "drift_psi": psi, "drift_column": column})
        if run["state"] == "COMPLETED":
            previous = run
    return pl.DataFrame(out, infer_schema_length=None)


def run_context(run_id: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> dict[str, Any]:
    """A run against its dataset's past: what alert rules judge it by.

    ``run`` (its row, ``gate_failed``, ``seconds``: the sum of its stage timings),
    ``previous`` (the dataset's last completed run before it, or None), ``drift_psi`` and
    ``drift_column`` (against that run), and ``median_seconds`` (of the dataset's completed
    runs before it; None with fewer than three).
    """
    with connect(warehouse, read_only=True) as con:
        cur = con.execute(
            "SELECT run_id, blueprint, dataset, state, started_at, finished_at, rows_in, "
            "rows_quarantined, rows_out, quality_score, error, "
            f"coalesce({_GATE_FAILED}, false) AS gate_failed, "
            "(SELECT sum(seconds) FROM stage_timings t WHERE t.run_id = r.run_id) AS seconds "
            "FROM runs r WHERE dataset = (SELECT dataset FROM runs WHERE run_id = ?) "
            "AND started_at <= (SELECT started_at FROM runs WHERE run_id = ?) "
            "ORDER BY started_at DESC, run_id DESC LIMIT 51",
            [run_id, run_id],
        )
        rows = fetched_dicts(cur)
    if not rows or rows[0]["run_id"] != run_id:
        raise TracerError(f"no run {run_id!r}")
    run, earlier = rows[0], [r for r in rows[1:] if r["state"] == "COMPLETED"]
    previous = earlier[0] if earlier else None
    psi, column = _largest_drift(run, previous, warehouse) if run["state"] else (None, None)
    timed = sorted(r["seconds"] for r in earlier if r["seconds"])
    median = statistics.median(timed) if len(timed) >= 3 else None
    return {
        "run": run,
        "previous": previous,
        "drift_psi": psi,
        "drift_column": column,
        "median_seconds": median,
    }


def runs_summary(
    *, warehouse: str | Path = DEFAULT_WAREHOUSE, since: dt.datetime | None = None
) -> dict[str, Any]:
    """Runs by state and by blueprint, rows processed, gate failures, mean score per dataset."""
    empty = {
        "runs": 0,
        "by_state": {},
        "by_blueprint": {},
        "rows_in": 0,
        "rows_out": 0,
        "rows_quarantined": 0,
        "gate_failures": 0,
        "mean_score_by_dataset": {},
    }
    if not Path(warehouse).exists():
        return empty
    window = "started_at >= ?" if since else "TRUE"
    params = [since] if since else []
    with connect(warehouse, read_only=True) as con:
        by_state = dict(
            con.execute(
                f"SELECT state, count(*) FROM runs WHERE {window} GROUP BY state ORDER BY state",
                params,
            ).fetchall()
        )
        by_bp = dict(
            con.execute(
                f"SELECT blueprint, count(*) FROM runs WHERE {window} GROUP BY 1 ORDER BY 1", params
            ).fetchall()
        )
        totals = con.execute(
            "SELECT count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_out), 0), "
            "coalesce(sum(rows_quarantined), 0), "
            f"count(*) FILTER (WHERE {_GATE_FAILED}) FROM runs WHERE {window}",
            params,
        ).fetchall()[0]
        scores = dict(
            con.execute(
                f"SELECT dataset, round(avg(quality_score), 2) FROM runs WHERE {window} AND "
                "quality_score IS NOT NULL GROUP BY 1 ORDER BY 1",
                params,
            ).fetchall()
        )
    keys = ("runs", "rows_in", "rows_out", "rows_quarantined", "gate_failures")
    return {
        **empty,
        **dict(zip(keys, map(int, totals), strict=True)),
        "by_state": by_state,
        "by_blueprint": by_bp,
        "mean_score_by_dataset": scores,
    }
