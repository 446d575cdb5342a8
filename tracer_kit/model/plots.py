"""The model's pictures: each task's chart over its summary and predictions, as SVG text.

Drawn from the numbers the run keeps (:func:`tracer_kit.svg.xy_chart`): no chart engine is
started, the report stays self-contained and offline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from tracer_kit.svg import BLUE, PALETTE, Layer, Panel, date_label, xy_chart

__all__ = ["churn_chart", "elasticity_chart", "forecast_chart", "regression_chart"]

_ORANGE, _GREY, _DARK = PALETTE[1], "#999999", "#333333"


def _diagonal(low: float = 0.0, high: float = 1.0) -> Layer:
    return Layer("dashed", [low, high], [low, high], color=_GREY)


def churn_chart(
    summary: dict[str, Any], *, rows: str = "customers", rate: str = "churn rate"
) -> str | None:
    """The held-out ROC curve beside the calibration chart (observed rate per predicted decile)."""
    roc, cal = summary.get("roc") or {}, summary.get("calibration") or {}
    if not roc.get("fpr"):
        return None
    roc_panel = Panel(
        f"ROC (held-out {rows})",
        [Layer("line", roc["fpr"], roc["tpr"]), _diagonal()],
        x_title="false positive rate",
        y_title="true positive rate",
        height=260,
    )
    predicted, observed = cal.get("predicted", []), cal.get("observed", [])
    cal_panel = Panel(
        "Calibration",
        [
            Layer("line", predicted, observed, color=_ORANGE),
            Layer("points", predicted, observed, color=_ORANGE),
            _diagonal(),
        ],
        x_title="mean predicted probability",
        y_title=f"observed {rate}",
        height=260,
    )
    return xy_chart(roc_panel, cal_panel)


def _days(values: list[Any]) -> list[float]:
    """Dates (or ISO date text) as days since 1970."""
    epoch = dt.date(1970, 1, 1)
    out = []
    for v in values:
        day = v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)[:10])
        out.append(float((day - epoch).days))
    return out


def forecast_chart(
    summary: dict[str, Any], forecast: pl.DataFrame, *, value: str = "revenue"
) -> str | None:
    """The last 180 days of ``value``, then the forecast with its 80% and 95% bands."""
    history = summary.get("history") or {}
    if not history.get("date") or forecast.height == 0:
        return None
    past = _days(history["date"])
    ahead = _days(forecast["date"].to_list())
    column = forecast.get_column
    layers = [
        Layer("band", ahead, column("lower_95").to_list(), column("upper_95").to_list(), BLUE, 0.2),
        Layer("band", ahead, column("lower").to_list(), column("upper").to_list(), BLUE, 0.35),
        Layer("line", past, history[value], color=_DARK),
        Layer("line", ahead, column("prediction").to_list()),
    ]
    return xy_chart(
        Panel(
            f"{value.capitalize()}: history, forecast, 80% and 95% intervals",
            layers,
            y_title=f"{value} per day",
            width=620,
            height=240,
            x_label=date_label,
        )
    )


def elasticity_chart(products: list[dict[str, Any]]) -> str | None:
    """Each identifiable product's elasticity with its 95% interval."""
    rows = [p for p in products if p.get("identifiable")]
    if not rows:
        return None
    index = [float(i) for i in range(len(rows))]
    return xy_chart(
        Panel(
            "",
            [
                Layer("interval", [p["lower"] for p in rows], index, [p["upper"] for p in rows]),
                Layer("points", [p["prediction"] for p in rows], index),
            ],
            x_title="price elasticity (95% interval)",
            width=520,
            height=max(60, 18 * len(rows)),
            y_labels=[str(p["product_id"]) for p in rows],
        )
    )


def regression_chart(summary: dict[str, Any], *, target: str) -> str | None:
    """Held-out rows: predicted against actual ``target``, with the line where they agree."""
    points = summary.get("held_out") or {}
    if not points.get("actual"):
        return None
    actual, predicted = points["actual"], points["predicted"]
    low, high = min(min(actual), min(predicted)), max(max(actual), max(predicted))
    return xy_chart(
        Panel(
            f"{target}: held-out rows",
            [Layer("points", actual, predicted, opacity=0.5), _diagonal(low, high)],
            x_title=f"actual {target}",
            y_title="predicted",
            width=360,
            height=300,
        )
    )
