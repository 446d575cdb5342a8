"""Every dataset's history on one page: verdicts, trends, runs, schedules and alerts.

The page the server answers at ``/`` and ``tracer history DATASET --out page.html`` writes:
one self-contained HTML file (inline SVG charts, no script needed to read it; a small one
filters the runs table), so it opens offline, from disk or in JupyterLab, as the report
does. :func:`history` gives a dataset's runs as a DataFrame that shows its trend chart in a
notebook.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl
from markupsafe import Markup

from tracer_kit._resources import resource_path
from tracer_kit.connections import redact
from tracer_kit.cron import next_due
from tracer_kit.errors import ConfigError
from tracer_kit.svg import BLUE, PALETTE, RED, Line, line_chart
from tracer_kit.trends import dataset_history, datasets, list_runs
from tracer_kit.types import SCORE_PARTS
from tracer_kit.warehouse import DEFAULT_WAREHOUSE, connect, holding_reads, table_rows
from tracer_kit.writing import write_text_file

__all__ = [
    "DRIFT_PSI",
    "HistoryFrame",
    "alert_listing",
    "history",
    "history_page",
    "schedule_listing",
    "trend_chart",
    "write_history_page",
]

#: The PSI above which a run is flagged as drifted (on the page; the alert rule's default).
DRIFT_PSI = 0.25
#: A drifted run's dot.
_ORANGE = PALETTE[1]
#: Runs a dataset's trend on the page shows (its latest).
_TREND_RUNS = 60
#: Runs the page lists (newest first).
_RUNS_SHOWN = 500


def trend_chart(frame: pl.DataFrame, *, width: int = 560) -> str | None:
    """A dataset's score and its parts per run (SVG); gate failures red, drift orange.

    None with fewer than two runs (a trend starts with the second).
    """
    if frame.height < 2:
        return None
    rows = list(frame.iter_rows(named=True))
    labels = [f"{r['started_at']:%m-%d %H:%M}" if r["started_at"] else r["run_id"] for r in rows]
    dots = [
        RED
        if r["gate_failed"] or r["state"] == "FAILED"
        else _ORANGE
        if (r["drift_psi"] or 0) > DRIFT_PSI
        else BLUE
        for r in rows
    ]
    lines = [Line("quality score", [r["quality_score"] for r in rows], BLUE, dots)]
    for k, part in enumerate(SCORE_PARTS):
        values = [None if r[f"part_{part}"] is None else 100 * r[f"part_{part}"] for r in rows]
        lines.append(Line(part, values, PALETTE[(k + 2) % len(PALETTE)]))
    unscored = [
        0.0 if r["state"] == "FAILED" and r["quality_score"] is None else None for r in rows
    ]
    if any(v is not None for v in unscored):  # (a run that failed before it was scored)
        lines.append(Line("failed, no score", unscored, RED, [RED] * len(rows)))
    return line_chart(labels, lines, y_title="score", y_top=100, width=width, height=170)


class HistoryFrame(pl.DataFrame):
    """A dataset's runs (:func:`history`); in a notebook it shows its trend chart first."""

    def _repr_html_(self, **kwargs: Any) -> str:
        chart = trend_chart(self) if "run_id" in self.columns else None
        return (chart or "") + pl.DataFrame(self)._repr_html_(**kwargs)


def history(dataset: str, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> HistoryFrame:
    """One row per run of ``dataset``, oldest first: its state, rows, score and parts, drift.

    Shown in a notebook, the table comes with the trend chart: the score and its parts per
    run, gate failures marked red, drifted runs (PSI above :data:`DRIFT_PSI`) orange.

    Examples
    --------
    >>> tk.history("customers")  # doctest: +SKIP
    """
    with holding_reads(warehouse):
        return HistoryFrame(dataset_history(dataset, warehouse=warehouse))


def _local(moment: dt.datetime | None, zone: dt.tzinfo) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone).isoformat(timespec="minutes")


def schedule_listing(
    warehouse: str | Path, zone: dt.tzinfo, now: dt.datetime, *, queued: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Every schedule as listed: times in ``zone`` (named in each), its next run, its note."""
    views, waiting = [], set(queued)
    for row in table_rows(warehouse, "schedules", order="name"):
        after = row["last_due_at"] or row["created_at"]
        after = after.replace(tzinfo=dt.UTC) if after else now
        upcoming = None if row["paused"] else next_due(row["cron"], max(after, now), zone)
        note = row["note"]
        if row["name"] in waiting:
            note = "due again while its previous run goes: queued behind it"
        views.append(
            {
                "name": row["name"],
                "cron": row["cron"],
                "timezone": str(zone),
                "source": redact(row["source"]),
                "blueprint": row["blueprint"],
                "dataset": row["dataset"],
                "notebook": bool(row["notebook"]),
                "config_file": row["config_file"],
                "paused": bool(row["paused"]),
                "next_run": _local(upcoming, zone),
                "last_due": _local(row["last_due_at"], zone),
                "last_fired": _local(row["last_fired_at"], zone),
                "last_runs": row["last_runs"] or [],
                "last_state": row["last_state"],
                "note": note,
            }
        )
    return views


def alert_listing(
    warehouse: str | Path, *, limit: int = 200, dataset: str | None = None
) -> list[dict[str, Any]]:
    """The alerts sent (or being sent), newest first."""
    rows = table_rows(warehouse, "alerts", order="created_at DESC")
    if dataset is not None:
        rows = [r for r in rows if dataset in (r["dataset"], r["schedule"])]
    return rows[:limit]


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    path = resource_path("templates/history.html.j2")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(path.name)


def _dataset_cards(warehouse: str | Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cards = []
    for entry in entries:
        frame = dataset_history(entry["dataset"], warehouse=warehouse, last=_TREND_RUNS)
        last = frame.row(-1, named=True)
        chart = trend_chart(frame, width=780)
        cards.append(
            {
                **entry,
                "gate_failed": bool(last["gate_failed"]),
                "gate_failures": int(frame["gate_failed"].sum()),
                "drifted": int((frame["drift_psi"].fill_null(0) > DRIFT_PSI).sum()),
                "drift_column": last["drift_column"]
                if (last["drift_psi"] or 0) > DRIFT_PSI
                else None,
                "chart": Markup(chart) if chart else None,
            }
        )
    return cards


def history_page(
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    dataset: str | None = None,
    zone: dt.tzinfo = dt.UTC,
    now: dt.datetime | None = None,
    report_link: Callable[[dict[str, Any]], str | None] | None = None,
    queued: Iterable[str] = (),
    page_folder: Path | None = None,
) -> str:
    """The history page's HTML: ``dataset`` only, or every dataset.

    ``report_link`` gives a run's report address (None: the report's file when it exists,
    relative to ``page_folder``, by default the current folder).
    """
    with holding_reads(warehouse):  # (one open for the page's reads)
        return _page(
            warehouse,
            dataset,
            zone,
            now or dt.datetime.now(dt.UTC),
            report_link,
            queued,
            page_folder or Path.cwd(),
        )


def _page(
    warehouse: str | Path,
    dataset: str | None,
    zone: dt.tzinfo,
    now: dt.datetime,
    report_link: Callable[[dict[str, Any]], str | None] | None,
    queued: Iterable[str],
    page_folder: Path,
) -> str:
    entries = [d for d in datasets(warehouse=warehouse) if dataset in (None, d["dataset"])]
    if dataset is not None and not entries:
        raise ConfigError(f"no runs of a dataset called {dataset!r}; `tracer runs` lists them")
    total, runs = list_runs(warehouse=warehouse, dataset=dataset, limit=_RUNS_SHOWN)
    link = report_link or _file_links(
        page_folder, _report_paths(warehouse, [r["run_id"] for r in runs])
    )
    for run in runs:
        run["input_path"] = redact(run["input_path"] or "")
        run["report"] = link(run)
        run["started"] = _local(run["started_at"], zone)
    return _template().render(
        title=f"History of {dataset}" if dataset else "Datasets and their history",
        generated=_local(now, zone),
        zone=str(zone),
        cards=_dataset_cards(warehouse, entries),
        runs=runs,
        runs_total=total,
        states=sorted({r["state"] for r in runs}),
        dataset_names=sorted({r["dataset"] for r in runs if r["dataset"]}),
        schedules=[
            s
            for s in schedule_listing(warehouse, zone, now, queued=queued)
            if dataset is None or s["dataset"] in (None, dataset)
        ],
        alerts=[
            {**a, "created": _local(a["created_at"], zone)}
            for a in alert_listing(warehouse, dataset=dataset)
        ],
        drift_psi=DRIFT_PSI,
    )


def _report_paths(warehouse: str | Path, run_ids: list[str]) -> dict[str, Path]:
    """Each run's report file, when the run wrote one and it is still there."""
    if not run_ids:
        return {}
    with connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, json_extract_string(outputs, '$.report') FROM runs "
            "WHERE list_contains(?, run_id)",
            [run_ids],
        ).fetchall()
    return {r: Path(p) for r, p in rows if p and Path(p).is_file()}


def _file_links(folder: Path, reports: dict[str, Path]) -> Callable[[dict[str, Any]], str | None]:
    """Links to report files, relative to the page's folder when they can be."""

    def link(run: dict[str, Any]) -> str | None:
        path = reports.get(run["run_id"])
        if path is None:
            return None
        try:
            return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
        except ValueError:  # (another drive)
            return path.resolve().as_uri()

    return link


def write_history_page(
    path: str | Path,
    dataset: str | None = None,
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    force: bool = False,
    zone: dt.tzinfo = dt.UTC,
) -> Path:
    """Write :func:`history_page` to ``path`` (``.html``); never over a file unless ``force``."""
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {path}: the history page is written as .html")
    if target.exists() and not force:
        raise ConfigError(f"--out {path} exists; add --force to overwrite it")
    page = history_page(warehouse=warehouse, dataset=dataset, zone=zone, page_folder=target.parent)
    return write_text_file(target, page)
