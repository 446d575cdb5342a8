"""The model's pictures and the Predictions section both the report and the notebooks show.

:func:`predictions_section` turns a run's record (``record.model`` and its predictions file)
into what the report's template renders: the plain sentence, the metrics beside their
baseline, and the charts (ROC and calibration for churn; history, forecast and intervals
for revenue; elasticities with their intervals for price).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.cells import HIDDEN
from tracer_kit.display import svg_data_uri
from tracer_kit.heavy import altair
from tracer_kit.model.stage import MODELS, headline
from tracer_kit.workspace import parquet_location

__all__ = [
    "METRIC_WORDS",
    "RISKIEST",
    "churn_chart",
    "elasticity_chart",
    "forecast_chart",
    "predictions_section",
]

#: How to get a churn model, shown where there is none.
HOW_TO_LABEL = (
    "Add a 'churned' column (yes/no, true/false, 1/0 or y/n) saying which customers left, "
    "with at least 20 of each; the next run fits, evaluates and saves a model. Until then "
    "no churn score is given: a score without a label to check it against is a guess."
)


def _diagonal() -> Any:
    alt = altair()

    return alt.Chart(alt.Data(values=[{"a": 0, "b": 0}, {"a": 1, "b": 1}])).mark_line(
        strokeDash=[4, 4], color="#999"
    )


def churn_chart(summary: dict[str, Any]) -> Any | None:
    """The held-out ROC curve beside the calibration chart (observed rate per predicted decile)."""
    alt = altair()

    roc, cal = summary.get("roc") or {}, summary.get("calibration") or {}
    if not roc.get("fpr"):
        return None
    roc_values = [{"fpr": f, "tpr": t} for f, t in zip(roc["fpr"], roc["tpr"], strict=True)]
    roc_chart = alt.Chart(alt.Data(values=roc_values), title="ROC (held-out customers)").mark_line(
        color="#4c78a8"
    ).encode(
        x=alt.X("fpr:Q", title="false positive rate"), y=alt.Y("tpr:Q", title="true positive rate")
    ) + _diagonal().encode(x="a:Q", y="b:Q")
    cal_values = [
        {"predicted": p, "observed": o}
        for p, o in zip(cal.get("predicted", []), cal.get("observed", []), strict=True)
    ]
    cal_chart = alt.Chart(alt.Data(values=cal_values), title="Calibration").mark_line(
        point=True, color="#f58518"
    ).encode(
        x=alt.X("predicted:Q", title="mean predicted probability"),
        y=alt.Y("observed:Q", title="observed churn rate"),
    ) + _diagonal().encode(x="a:Q", y="b:Q")
    return alt.hconcat(
        roc_chart.properties(width=300, height=260), cal_chart.properties(width=300, height=260)
    )


def forecast_chart(summary: dict[str, Any], forecast: pl.DataFrame) -> Any | None:
    """The last 180 days of revenue, then the forecast with its 80% and 95% bands."""
    alt = altair()

    history = summary.get("history") or {}
    if not history.get("date") or forecast.height == 0:
        return None
    past = [
        {"date": d, "revenue": v} for d, v in zip(history["date"], history["revenue"], strict=True)
    ]
    ahead = forecast.with_columns(pl.col("date").cast(pl.String)).to_dicts()
    x = alt.X("date:T", title=None)
    base = alt.Chart(alt.Data(values=ahead)).encode(x=x)
    band95 = base.mark_area(opacity=0.2, color="#4c78a8").encode(
        y=alt.Y("lower_95:Q", title="revenue per day"), y2="upper_95:Q"
    )
    band80 = base.mark_area(opacity=0.35, color="#4c78a8").encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(color="#4c78a8").encode(y="prediction:Q")
    seen = alt.Chart(alt.Data(values=past)).mark_line(color="#333").encode(x=x, y="revenue:Q")
    title = "Revenue: history, forecast, 80% and 95% intervals"
    return (seen + band95 + band80 + line).properties(width=620, height=240, title=title)


def elasticity_chart(products: list[dict[str, Any]]) -> Any | None:
    """Each identifiable product's elasticity with its 95% interval."""
    alt = altair()

    rows = [
        {k: p[k] for k in ("product_id", "prediction", "lower", "upper")}
        for p in products
        if p.get("identifiable")
    ]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("product_id:N", title=None, sort=None))
    ci = base.mark_rule(color="#4c78a8").encode(
        x=alt.X("lower:Q", title="price elasticity (95% interval)"), x2="upper:Q"
    )
    point = base.mark_point(filled=True, color="#4c78a8").encode(x="prediction:Q")
    return (ci + point).properties(width=520, height=max(60, 18 * len(rows)))


def _predictions(run: dict[str, Any]) -> pl.DataFrame:
    path = (run.get("outputs") or {}).get("predictions")
    location = parquet_location(path) if path else None
    if location is None:
        return pl.DataFrame()
    frame = pl.read_parquet(location)
    if Path(path).is_dir():  # a Spark run's part files come in no order: put them in key order
        frame = frame.sort([c for c in ("product_id", "date", "customer_id") if c in frame.columns])
    return frame


def _chart(blueprint: str, summary: dict[str, Any], predictions: pl.DataFrame) -> Any | None:
    if blueprint == "customer_churn":
        return churn_chart(summary)
    if blueprint == "revenue_projection":
        return forecast_chart(summary, predictions)
    if blueprint == "price_optimization":
        return elasticity_chart(summary.get("products") or [])
    return None


def predictions_section(run: dict[str, Any]) -> dict[str, Any] | None:
    """What the Predictions section shows for a run (None when its blueprint has no model stage)."""
    record = run["record"]
    summary = record.model.model_dump(exclude_unset=True) if record.model else None
    blueprint = run["blueprint"]
    if summary is None and blueprint not in MODELS:
        return None
    summary = summary or {"model": None, "why": "the run has no model stage record"}
    predictions = _predictions(run)
    section = {
        "summary": summary,
        "sentence": headline(blueprint, summary),
        "rows": predictions.height,
    }
    if summary.get("model") is None:
        section["how"] = HOW_TO_LABEL if blueprint == "customer_churn" else None
        return section
    if summary.get("model") != "saved":
        chart = _chart(blueprint, summary, predictions)
        section["chart"] = svg_data_uri(chart) if chart is not None else None
    section["sample"] = predictions.head(10).to_dicts()
    if blueprint == "customer_churn" and "prediction" in predictions.columns:
        section["riskiest"] = _riskiest(predictions, run, RISKIEST)
    section["file"], section["file_href"] = _file_link(run.get("outputs") or {})
    return section


def _file_link(outputs: dict[str, Any]) -> tuple[str | None, str | None]:
    """The predictions file, and its address relative to the report's folder (a link that
    works wherever the project is, as long as the report stays in it).
    """  # noqa: D205
    import os

    path, report = outputs.get("predictions"), outputs.get("report")
    if not path or not Path(path).exists():
        return None, None
    if not report:
        return path, Path(path).resolve().as_uri()
    href = os.path.relpath(Path(path).resolve(), Path(report).resolve().parent)
    return path, href.replace(os.sep, "/")


#: How many of the riskiest customers the report lists.
RISKIEST = 20


def _riskiest(predictions: pl.DataFrame, run: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The ``n`` customers most likely to churn (a personal identifier shown as hidden)."""
    top = predictions.sort(["prediction", "customer_id"], descending=[True, False]).head(n)
    personal = "customer_id" in run["record"].personal
    rows = top.select("customer_id", "prediction").to_dicts()
    return [{**r, "customer_id": HIDDEN} for r in rows] if personal else rows


#: Each churn metric: what it says, and which way is better (shown beside its value).
METRIC_WORDS = {
    "roc_auc": ("ROC AUC", "higher is better; 0.5 is a coin flip, 1 a perfect ranking",
                "how well the model ranks churners above stayers"),
    "pr_auc": ("PR AUC", "higher is better; the base rate is what guessing gets",
               "precision over recall: how clean the list of flagged customers is"),
    "brier": ("Brier score", "lower is better; 0 is perfect",
              "mean squared gap between the probability and what happened"),
    "log_loss": ("Log loss", "lower is better",
                 "how surprised the probabilities are by what happened"),
    "lift_top_decile": ("Lift, top 10%", "higher is better; 1 is no better than random",
                        "how many times the base rate churns among the 10% riskiest"),
    "capture_top_decile": ("Churners in the top 10%", "higher is better; 0.10 is random",
                           "share of all churners found by calling the riskiest 10%"),
}  # fmt: skip
