"""HTML pieces every view of a run shares: tables, the gate verdict, the summary, charts as SVG.

Plain functions of plain values (no notebook, no warehouse), so value types can show
themselves (``_repr_html_``) and the report, the workbench and notebooks say the same.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from markupsafe import Markup, escape

from tracer_kit.cells import shorten
from tracer_kit.types import SCORE_PARTS

__all__ = ["html_table", "summary_html", "svg_data_uri", "verdict", "verdict_html"]


def svg_data_uri(chart: Any) -> str:
    """Render an altair chart to SVG offline and return it as a ``data:`` URI for an ``<img>``."""
    import vl_convert as vlc

    # no schema validation: it takes seconds, and our chart specs are fixed
    svg = vlc.vegalite_to_svg(chart.to_dict(validate=False))
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Markup("data:image/svg+xml;base64," + data)  # (base64: nothing to escape)


def html_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain HTML table of ``rows`` (dicts) with every value escaped."""
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='padding:2px 8px'>{html.escape(shorten(_fmt(r.get(c))))}</td>"
            for c in columns
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def verdict(state: str, error: str | None, gate: Any, issues: list[Any]) -> dict[str, Any]:
    """The run's headline, which leads wherever the score is shown: did the gate pass, and why not.

    A run where no row passed validation must not read as "score 70, nearly fine": the gate
    verdict (``gate``, the run record's :class:`~tracer_kit.record.GateVerdict`, None when
    the run stopped before its gate) and its critical issues come first.
    """
    critical = [i["message"] for i in issues if i["severity"] == "critical"]
    if state == "COMPLETED":
        return {"passed": True, "headline": "Quality gate passed", "reasons": []}
    if gate is not None and not gate.passed:
        reasons = critical or list(gate.failures)
        return {"passed": False, "headline": "Quality gate FAILED", "reasons": reasons}
    if state == "FAILED":
        return {"passed": False, "headline": "Run FAILED", "reasons": [error or "unknown error"]}
    return {"passed": None, "headline": f"Run {state}", "reasons": [error] if error else []}


def verdict_html(v: dict[str, Any]) -> str:
    """The verdict as an HTML block (notebook, workbench)."""
    color = "#0e5814" if v["passed"] else "#ab091e" if v["passed"] is False else "#555"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v["reasons"])
    return (
        f"<div class='tracer-verdict'><h3 style='color:{color}'>{escape(v['headline'])}</h3>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
        + "</div>"
    )


def summary_html(result: Any) -> str:
    """A run's headline as HTML (notebooks, the workbench): verdict, state, counts, score parts."""
    parts = "".join(
        f"<tr><td>{escape(k)}</td><td style='text-align:right'>{100 * v:.1f}%</td></tr>"
        for k in SCORE_PARTS
        if (v := result.score_parts.get(k)) is not None
    )
    score = f"{result.quality_score:.1f}" if result.quality_score is not None else "-"
    head = verdict_html(verdict(result.state, result.error, result.record.gate, result.issues))
    return (
        head + f"<h3>Quality score: <span class='quality-score'>{score}</span> / 100</h3>"
        f"<p>Run <code>{escape(result.run_id)}</code>, blueprint <b>{escape(result.blueprint)}</b>, "
        f"state <b>{escape(result.state)}</b>: {result.rows_in:,} rows in, {result.rows_valid:,} valid, "
        f"{result.rows_quarantined:,} quarantined, {result.rows_out:,} out.</p>"
        f"<table><tr><th>part</th><th>share</th></tr>{parts}</table>"
        f"<p>Report: <code>{escape(result.outputs.get('report', ''))}</code></p>"
    )
