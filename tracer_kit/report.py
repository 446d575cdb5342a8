"""Report: one self-contained HTML quality report per run, rendered from the warehouse.

Everything comes from what the run committed (``runs``, ``quality_issues``,
``column_profiles``, ``quarantine_<bp>``), so ``tracer report RUN_ID`` rebuilds the same
page later. Charts are static SVG (altair + vl-convert) embedded as data URIs: the page
makes no network request and no value from the data can run as script. Every value is
HTML-escaped by Jinja's autoescaping.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit._resources import resource_path
from tracer_kit.blueprints import get_blueprint
from tracer_kit.cells import HIDDEN, shorten
from tracer_kit.display import html_table, summary_html, svg_data_uri, verdict, verdict_html
from tracer_kit.failing import failing_rows, run_checks_failed
from tracer_kit.model.charts import METRIC_WORDS, predictions_section
from tracer_kit.quality import ISSUE_COLUMNS, SCORE_WEIGHTS, SEVERITIES
from tracer_kit.quality.rule_results import RuleResult, rule_results
from tracer_kit.svg import (
    BLUE,
    RED,
    Histogram,
    Line,
    histogram_grid,
    line_chart,
    stacked_histogram,
    svg_uri,
)
from tracer_kit.types import by_severity
from tracer_kit.warehouse import DEFAULT_WAREHOUSE, holding, report_inputs, run_row
from tracer_kit.workspace import DEFAULT_REPORTS, parquet_location
from tracer_kit.writing import neutralise_cells

__all__ = [
    "MAX_HIST_CHARTS",
    "drift",
    "feature_chart",
    "html_table",
    "feature_rows",
    "predictions_html",
    "processed_sample",
    "psi",
    "quality_report",
    "rebin",
    "render_report",
    "show_issues",
    "show_predictions",
    "show_rules",
    "show_summary",
    "svg_data_uri",
    "verdict",
    "verdict_html",
]

MAX_HIST_CHARTS = 24


def _histogram_chart(profiles: list[dict[str, Any]]) -> str | None:
    """The stored bins of each column as small multiples (SVG text), at most MAX_HIST_CHARTS."""
    panels = [
        Histogram(p["column"], p["hist_edges"], p["hist_counts"], p["dtype"])
        for p in profiles[:MAX_HIST_CHARTS]
    ]
    return histogram_grid(panels)


def _history_chart(history: pl.DataFrame) -> str | None:
    """The quality score of the blueprint's runs in order (SVG text), failed runs in red."""
    if history.height < 2:
        return None
    rows = list(history.iter_rows(named=True))
    score = Line(
        "quality score",
        [r["quality_score"] for r in rows],
        dots=[RED if r["state"] == "FAILED" else BLUE for r in rows],
    )
    return line_chart([r["run_id"] for r in rows], [score], y_title="quality score", y_top=100)


def psi(expected: list[float], actual: list[float], floor: float = 1e-4) -> float:
    """Population stability index between two count vectors over the same bins.

    ``sum((a - e) * ln(a / e))`` over bin shares, each floored at ``floor`` so empty bins stay finite.
    """
    e_total, a_total = sum(expected), sum(actual)
    if not e_total or not a_total:
        return 0.0
    out = 0.0
    for e, a in zip(expected, actual, strict=True):
        pe, pa = max(e / e_total, floor), max(a / a_total, floor)
        out += (pa - pe) * math.log(pa / pe)
    return out


def rebin(edges: list[float], counts: list[int], new_edges: list[float]) -> list[float]:
    """Spread a histogram's counts onto other bin edges, uniformly within each old bin."""
    out = [0.0] * (len(new_edges) - 1)
    for (lo, hi), c in zip(zip(edges[:-1], edges[1:], strict=True), counts, strict=True):
        if not c:
            continue
        if hi <= lo:  # a single value
            j = min(max(_bin_index(new_edges, lo), 0), len(out) - 1)
            out[j] += c
            continue
        for j, (nlo, nhi) in enumerate(zip(new_edges[:-1], new_edges[1:], strict=True)):
            overlap = min(hi, nhi) - max(lo, nlo)
            if overlap > 0:
                out[j] += c * overlap / (hi - lo)
    return out


def _bin_index(edges: list[float], value: float) -> int:
    for j in range(len(edges) - 1):
        if value < edges[j + 1]:
            return j
    return len(edges) - 2


def drift(
    current: list[dict[str, Any]], previous: list[dict[str, Any]], rows_now: int, rows_before: int
) -> list[dict[str, Any]]:
    """Per column present in both runs: mean before/after, change in null rate, and PSI."""
    before = {p["column"]: p for p in previous}
    rows = []
    for p in current:
        q = before.get(p["column"])
        if q is None or p["column"] == "source_row":
            continue
        value = None
        if p["hist_counts"] and q["hist_counts"]:
            numeric = (
                len(p["hist_edges"]) == len(p["hist_counts"]) + 1
                and len(q["hist_edges"]) == len(q["hist_counts"]) + 1
            )
            if numeric:
                value = psi(
                    rebin(q["hist_edges"], q["hist_counts"], p["hist_edges"]), p["hist_counts"]
                )
            else:
                labels = list(
                    dict.fromkeys([*map(str, q["hist_edges"]), *map(str, p["hist_edges"])])
                )
                e = dict(zip(map(str, q["hist_edges"]), q["hist_counts"], strict=False))
                a = dict(zip(map(str, p["hist_edges"]), p["hist_counts"], strict=False))
                value = psi([e.get(k, 0) for k in labels], [a.get(k, 0) for k in labels])
        null_now = p["nulls"] / rows_now if rows_now else None
        null_before = q["nulls"] / rows_before if rows_before else None
        rows.append(
            {
                "column": p["column"],
                "dtype": p["dtype"],
                "mean_before": q["mean"],
                "mean_now": p["mean"],
                "mean_change": None
                if p["mean"] is None or q["mean"] is None
                else p["mean"] - q["mean"],
                "null_rate_change": None
                if null_now is None or null_before is None
                else null_now - null_before,
                "psi": value,
                "level": None
                if value is None
                else "major"
                if value > 0.25
                else "moderate"
                if value > 0.1
                else "stable",
            }
        )
    return rows


def _stat(value: Any, dtype: str) -> str:
    """A mean or median for display: dates (stored as days since 1970) shown as dates."""
    if value is None:
        return ""
    if dtype == "Date":
        import datetime as dt

        return (dt.date(1970, 1, 1) + dt.timedelta(days=round(value))).isoformat()
    return _num(value)


def _num(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _bounded(value: Any) -> Any:
    """A value as the report shows it: markup (charts) whole, any other text shortened."""
    import markupsafe

    return value if isinstance(value, markupsafe.Markup) else shorten(value)


@functools.lru_cache(maxsize=8)
def _environment(template_path: Path) -> Any:
    """The report's jinja2 environment: autoescaped, strict, with its number filters.

    Kept per template folder, so a long-lived process (a server's worker) compiles each
    template once; the loader still notices a template edited on disk. Compiled templates
    are also kept in jinja2's bytecode cache (a folder of the user's own under the system's
    temporary folder, keyed by the template's source), so a fresh process does not compile
    the report's template again (0.28 s of a cold ``tracer run``).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_path.parent)),
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_bounded,  # (every value shown is shortened: the page stays small)
    )
    env.filters["num"] = _num
    env.filters["stat"] = _stat
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}%"
    return env


def render_report(
    run: dict[str, Any],
    profiles: list[dict[str, Any]],
    quarantine_by_reason: list[dict],
    quarantine_sample: list[dict],
    history: pl.DataFrame,
    feature_sample: pl.DataFrame | None,
    *,
    drift_rows: list[dict[str, Any]] | None = None,
    previous_run: str | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> str:
    """The report's HTML for one run (pure: everything it shows is passed in)."""
    template_path = resource_path("templates/report.html.j2")
    env = _environment(template_path)
    try:
        bp = get_blueprint(run["blueprint"])
        features = [{"name": f.name, "formula": _formula(f, run)} for f in bp.features]
        feature_names = set(bp.feature_names)
    except Exception:
        features, feature_names = [], set()
    hist_features = _histogram_chart([p for p in profiles if p["column"] in feature_names])
    input_profiles = [
        p for p in profiles if p["column"] not in feature_names and p["column"] != "source_row"
    ]
    rows_out = run["rows_out"] or 0
    # identifiers (every value distinct) have no distribution worth drawing
    drawable = [
        p
        for p in input_profiles
        if not (p["dtype"] == "String" and rows_out > 20 and p["nulls"] + p["distinct"] >= rows_out)
    ]
    hist_inputs = _histogram_chart(drawable)
    history_chart = _history_chart(history)
    predictions = predictions_section(run)
    issues = by_severity(run["issues"])
    counts = {s: sum(1 for i in issues if i["severity"] == s) for s in SEVERITIES}
    return env.get_template(template_path.name).render(
        run=run,
        verdict=verdict(run["state"], run["error"], run["record"].gate, issues),
        issues=issues,
        severity_counts=counts,
        profiles=[p for p in profiles if p["column"] != "source_row"],
        features=features,
        inputs_chart=svg_uri(hist_inputs) if hist_inputs is not None else None,
        features_chart=svg_uri(hist_features) if hist_features is not None else None,
        history_chart=svg_uri(history_chart) if history_chart is not None else None,
        predictions=predictions,
        metric_words=METRIC_WORDS,
        heading=True,
        question=_question(run["blueprint"]),
        quarantine_by_reason=quarantine_by_reason,
        quarantine_sample=quarantine_sample,
        feature_rows=feature_sample.to_dicts() if feature_sample is not None else [],
        feature_columns=feature_sample.columns if feature_sample is not None else [],
        drift=drift_rows or [],
        score_weights=SCORE_WEIGHTS,
        previous_run=previous_run,
        rules=rules or [],
    )


def quality_report(
    run_id: str,
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    output_dir: str | Path | None = None,
    frame: pl.DataFrame | None = None,
) -> Path:
    """(Re)build ``<output_dir>/<run_id>/report.html`` from what the run stored; return its path.

    Parameters
    ----------
    run_id
        The run to report on (``tracer runs`` lists them).
    warehouse
        The DuckDB warehouse holding the run.
    output_dir
        Folder of run folders; default: the one the run used.
    frame
        The processed rows, when the caller has them; otherwise read from the run's Parquet.
    """
    with holding(warehouse):  # (one open of the warehouse for every read below)
        run = run_row(run_id, warehouse=warehouse)
        got = report_inputs(run, warehouse=warehouse)
        rules = run_rules(run, warehouse=warehouse)
    out_dir = Path(output_dir or run["record"].output_dir or DEFAULT_REPORTS) / run_id
    profiles, by_reason, sample = got.profiles, got.quarantine_by_reason, got.quarantine_sample
    history, previous, before = got.history, got.previous, got.previous_profiles
    drift_rows: list[dict[str, Any]] = []
    if previous is not None and before is not None:
        drift_rows = drift(profiles, before, run["rows_out"] or 0, previous[1])
    parquet = run["outputs"].get("parquet")
    location = parquet_location(parquet) if parquet else None
    if frame is None and run["state"] == "COMPLETED" and location:
        frame = pl.read_parquet(location, n_rows=20)
    personal = run["record"].personal
    sample_rows = (
        frame.head(20).drop("extras", *personal, strict=False) if frame is not None else None
    )
    html = render_report(
        run,
        profiles,
        by_reason,
        sample,
        history,
        sample_rows,
        drift_rows=drift_rows,
        previous_run=previous[0] if previous else None,
        rules=rules,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


#: Failing rows embedded per rule in a report (the rest: ``tracer quarantine``), and the
#: most bytes one rule's embedded CSV may take.
EMBEDDED_ROWS = 10_000
EMBEDDED_BYTES = 2_000_000


def run_rules(
    run: dict[str, Any], *, warehouse: str | Path = DEFAULT_WAREHOUSE, embed: bool = True
) -> list[dict]:
    """The run's rules (:func:`~tracer_kit.quality.rule_results.rule_results`) as table rows,
    each failing one with the command that exports its rows and (``embed``) the first of
    them as an embedded CSV link.
    """  # noqa: D205
    try:
        blueprint = get_blueprint(run["blueprint"])
    except Exception:  # (a blueprint no longer installed: the report still shows the rest)
        return []
    counts = run_checks_failed(run["run_id"], warehouse=warehouse)
    results = rule_results(blueprint, run["rows_in"] or 0, counts.iter_rows(), run["issues"])
    return [_rule_row(run["run_id"], r, warehouse, embed) for r in results]


def _rule_row(run_id: str, r: RuleResult, warehouse: str | Path, embed: bool) -> dict[str, Any]:
    row = {**r.to_dict(), "download": None, "command": None, "embedded": 0}
    if not (r.failed and r.quarantines):
        return row
    column = f" --column {r.column}" if r.column else ""
    row["command"] = f"tracer quarantine {run_id} --check {r.check}{column} --out rows.csv"
    if not embed:
        return row
    rows = failing_rows(
        run_id, check=r.check, column=r.column, limit=EMBEDDED_ROWS, warehouse=warehouse
    )
    text = neutralise_cells(rows).write_csv()
    if len(text) > EMBEDDED_BYTES:  # long values: fewer rows, whole ones
        keep = int(rows.height * EMBEDDED_BYTES / len(text))
        text = neutralise_cells(rows.head(keep)).write_csv() if keep else ""
        rows = rows.head(keep)
    if rows.height:
        import base64

        import markupsafe

        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        row["download"] = markupsafe.Markup(f"data:text/csv;base64,{encoded}")
        row["embedded"] = rows.height
        row["filename"] = (
            f"{run_id}-{r.check}{'-' + r.column.replace(',', '-') if r.column else ''}.csv"
        )
    return row


# --------------------------------------------------------------------------- notebook display


def show_summary(result: Any) -> Any:
    """An HTML block for notebooks: state, counts, the quality score and its parts."""
    from IPython.display import HTML

    return HTML(summary_html(result))


def show_rules(result: Any, *, warehouse: str | Path = DEFAULT_WAREHOUSE) -> Any:
    """Every rule the run checked, like a test report (notebooks): tested, passed, failed, verdict.

    ``tk.failing_rows(run_id, check=..., column=...)`` gives a rule's failing rows.
    """
    from IPython.display import HTML

    run = run_row(result.run_id, warehouse=warehouse)
    rows = run_rules(run, warehouse=warehouse, embed=False)
    if not rows:
        return HTML("<p>No rules: the run stopped before its rows were checked.</p>")
    shown = [
        {
            **{k: r[k] for k in ("rule", "column", "tested", "passed", "failed", "verdict")},
            "failed share": f"{100 * r['failed_share']:.1f}%",
            "severity": r["severity"] or "",
            "rows": f"tk.failing_rows({result.run_id!r}, check={r['check']!r}, column={r['column']!r})"
            if r["command"]
            else "",
        }
        for r in rows
    ]
    columns = [
        "rule",
        "column",
        "tested",
        "passed",
        "failed",
        "failed share",
        "severity",
        "verdict",
        "rows",
    ]
    return HTML(html_table(shown, columns))


def show_issues(result: Any) -> Any:
    """Every issue of the run as an HTML table (notebooks), most severe first."""
    from IPython.display import HTML

    if not result.issues:
        return HTML("<p>No issues.</p>")
    return HTML(html_table(by_severity(result.issues), list(ISSUE_COLUMNS)))


def _processed(result: Any) -> pl.LazyFrame | None:
    """The run's processed rows: its frame when it kept one, else a scan of its Parquet."""
    if result.frame is not None:
        return result.frame.lazy()
    path = result.outputs.get("parquet")
    location = parquet_location(path) if path else None
    if result.state == "COMPLETED" and location:
        return pl.scan_parquet(location)  # (a Spark run's folder: its part files)
    return None


def processed_sample(result: Any, n: int = 20) -> pl.DataFrame | None:
    """The first ``n`` processed rows of a run (read from its Parquet when it kept no frame)."""
    rows = _processed(result)
    return None if rows is None else rows.head(n).collect()


def feature_chart(result: Any, *, bins: int = 30) -> Any:
    """A static SVG histogram of the blueprint's headline feature over every processed row.

    Counts are exact (one streaming group-by over the run's Parquet); the axis ticks sit on
    the bin edges, and bars are split by the blueprint's colour hint (e.g. ``value_tier``).
    """
    from IPython.display import HTML

    bp = get_blueprint(result.blueprint)
    rows = _processed(result)
    column = bp.chart_column
    color = bp.report_hints.get("color")
    if rows is None:
        return HTML("<p>No processed rows to chart.</p>")
    if column is None:
        return HTML(f"<p>{bp.name} has no numeric feature or field to chart.</p>")
    value = pl.col(column).cast(pl.Float64)
    lo, hi, n = (
        rows.select(value.min().alias("lo"), value.max().alias("hi"), value.count().alias("n"))
        .collect(engine="streaming")
        .row(0)
    )
    if not n:
        return HTML(f"<p>No values of {column} to chart.</p>")
    width = (hi - lo) or 1.0
    index = ((value - lo) / width * bins).floor().clip(0, bins - 1).cast(pl.Int32).alias("i")
    keys = [index, *([pl.col(color)] if color else [])]
    counted = (
        rows.select(keys).drop_nulls("i").group_by(["i", *([color] if color else [])]).len()
        .collect(engine="streaming")
    )  # fmt: skip
    edges = [lo + width * k / bins for k in range(bins + 1)]
    groups: dict[str, list[int]] = {}
    for r in counted.sort(color or "i", nulls_last=True).iter_rows(named=True):
        name = str(r[color]) if color else column
        groups.setdefault(name, [0] * bins)[r["i"]] += r["len"]
    title = f"{column}: all {n:,} rows with a value"
    svg = stacked_histogram(title, edges, groups, x_title=column, legend=color or "")
    return HTML(f'<img alt="{column} histogram" src="{svg_uri(svg)}">')


def _formula(feature: Any, run: dict[str, Any]) -> str:
    """A feature's formula as this run computed it (a config's plan levels spelt out)."""
    config = run["record"].config
    levels = (config.get("features") or config).get("plan_levels")  # (older records: flat)
    if feature.name == "plan_value_score" and levels:
        ranks = ", ".join(f"{name}={i}" for i, name in enumerate(levels, start=1))
        return f"plan_type {ranks} (plan_levels from the config; case-insensitive), else null"
    return feature.formula


def feature_rows(result: Any, n: int = 10) -> pl.DataFrame | None:
    """The first ``n`` processed rows: position, the blueprint's key and the created features
    (a personal key column shown as hidden).
    """  # noqa: D205
    rows = processed_sample(result, n)
    if rows is None:
        return None
    key = [c for c in get_blueprint(result.blueprint).key if c in rows.columns]
    personal = set(result.record.personal)
    out = rows.select("source_row", *key, *result.features_created)
    return out.with_columns(pl.lit(HIDDEN).alias(c) for c in key if c in personal)


def _question(blueprint: str) -> str | None:
    """The question a blueprint answers (its report's title), when it declares one."""
    try:
        return get_blueprint(blueprint).report_hints.get("question")
    except Exception:
        return None


def predictions_html(run: dict[str, Any], *, heading: bool = True) -> str:
    """The Predictions section alone, as ``report.html`` shows it ("" without a model stage)."""
    template = resource_path("templates/predictions.html.j2")
    section = predictions_section(run)
    if section is None:
        return ""
    return (
        _environment(template)
        .get_template(template.name)
        .render(run=run, predictions=section, heading=heading, metric_words=METRIC_WORDS)
    )


def show_predictions(result: Any, *, heading: bool = False) -> Any:
    """The run's Predictions section for notebooks: the sentence, metrics beside baselines, charts.

    Without its heading by default: the notebook's own markdown cell says "Predictions".
    """
    from IPython.display import HTML

    run = {
        "blueprint": result.blueprint,
        "record": result.record,
        "outputs": result.outputs.as_dict(),
    }
    return HTML(
        predictions_html(run, heading=heading) or "<p>This blueprint has no model stage.</p>"
    )
