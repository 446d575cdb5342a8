"""The Predictions section both the report and the notebooks show.

:func:`predictions_section` turns a run's record (``record.model`` and its predictions file)
into what the report's template renders: the blueprint's model task's sentence and chart
(:mod:`tracer_kit.model.plots`), the metrics beside their baseline, and a sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint, get_blueprint
from tracer_kit.cells import HIDDEN
from tracer_kit.errors import TracerError
from tracer_kit.model.stage import (
    MODEL_OFF,
    headline,
    model_chart,
    model_task,
    prediction_id,
    task_words,
)
from tracer_kit.svg import svg_uri
from tracer_kit.workspace import parquet_location

__all__ = [
    "METRIC_WORDS",
    "RISKIEST",
    "predictions_section",
]

#: How to get a churn model, shown where there is none for want of a label (whole: a
#: report shortens any text over 200 characters).
HOW_TO_LABEL = (
    "Add a 'churned' column (yes/no, true/false, 1/0 or y/n) saying which customers left, "
    "at least 20 of each, and the next run fits, evaluates and saves a model; until then no "
    "churn score is given."
)


def _predictions(run: dict[str, Any], blueprint: Blueprint) -> pl.DataFrame:
    path = (run.get("outputs") or {}).get("predictions")
    location = parquet_location(path) if path else None
    if location is None:
        return pl.DataFrame()
    frame = pl.read_parquet(location)
    if Path(path).is_dir():  # a Spark run's part files come in no order: put them in key order
        keys = [prediction_id(blueprint), "date"]
        frame = frame.sort([c for c in dict.fromkeys(keys) if c in frame.columns])
    return frame


def _blueprint(name: str) -> Blueprint | None:
    try:
        return get_blueprint(name)
    except TracerError:  # (a blueprint no longer installed: no model section)
        return None


def predictions_section(run: dict[str, Any]) -> dict[str, Any] | None:
    """What the Predictions section shows for a run (None when its blueprint has no model stage)."""
    record = run["record"]
    summary = record.model.model_dump(exclude_unset=True) if record.model else None
    blueprint = _blueprint(run["blueprint"])
    if blueprint is None or (summary is None and model_task(blueprint) is None):
        return None
    summary = summary or {"model": None, "why": "the run has no model stage record"}
    predictions = _predictions(run, blueprint)
    section = {
        "summary": summary,
        "sentence": headline(blueprint, summary),
        "rows": predictions.height,
        "task": blueprint.model.task if blueprint.model else None,
        "words": task_words(blueprint),
    }
    churn = blueprint.model is not None and blueprint.model.task == "churn"
    if summary.get("model") is None:
        # (a stage turned off needs no label: the file may well have one)
        section["how"] = HOW_TO_LABEL if churn and summary.get("why") != MODEL_OFF else None
        return section
    if summary.get("model") != "saved":
        chart = model_chart(blueprint, summary, predictions)
        section["chart"] = svg_uri(chart) if chart is not None else None
    section["sample"] = predictions.head(10).to_dicts()
    if churn and "prediction" in predictions.columns:
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
