"""The model's pictures: each task's chart over its summary and predictions (altair)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracer_kit.heavy import altair

__all__ = ["churn_chart", "elasticity_chart", "forecast_chart", "regression_chart"]


def _diagonal() -> Any:
    alt = altair()

    return alt.Chart(alt.Data(values=[{"a": 0, "b": 0}, {"a": 1, "b": 1}])).mark_line(
        strokeDash=[4, 4], color="#999"
    )


def churn_chart(
    summary: dict[str, Any], *, rows: str = "customers", rate: str = "churn rate"
) -> Any | None:
    """The held-out ROC curve beside the calibration chart (observed rate per predicted decile)."""
    alt = altair()

    roc, cal = summary.get("roc") or {}, summary.get("calibration") or {}
    if not roc.get("fpr"):
        return None
    roc_values = [{"fpr": f, "tpr": t} for f, t in zip(roc["fpr"], roc["tpr"], strict=True)]
    roc_chart = alt.Chart(alt.Data(values=roc_values), title=f"ROC (held-out {rows})").mark_line(
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
        y=alt.Y("observed:Q", title=f"observed {rate}"),
    ) + _diagonal().encode(x="a:Q", y="b:Q")
    return alt.hconcat(
        roc_chart.properties(width=300, height=260), cal_chart.properties(width=300, height=260)
    )


def forecast_chart(
    summary: dict[str, Any], forecast: pl.DataFrame, *, value: str = "revenue"
) -> Any | None:
    """The last 180 days of ``value``, then the forecast with its 80% and 95% bands."""
    alt = altair()

    history = summary.get("history") or {}
    if not history.get("date") or forecast.height == 0:
        return None
    past = [{"date": d, "revenue": v} for d, v in zip(history["date"], history[value], strict=True)]
    ahead = forecast.with_columns(pl.col("date").cast(pl.String)).to_dicts()
    x = alt.X("date:T", title=None)
    base = alt.Chart(alt.Data(values=ahead)).encode(x=x)
    band95 = base.mark_area(opacity=0.2, color="#4c78a8").encode(
        y=alt.Y("lower_95:Q", title=f"{value} per day"), y2="upper_95:Q"
    )
    band80 = base.mark_area(opacity=0.35, color="#4c78a8").encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(color="#4c78a8").encode(y="prediction:Q")
    seen = alt.Chart(alt.Data(values=past)).mark_line(color="#333").encode(x=x, y="revenue:Q")
    title = f"{value.capitalize()}: history, forecast, 80% and 95% intervals"
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


def regression_chart(summary: dict[str, Any], *, target: str) -> Any | None:
    """Held-out rows: predicted against actual ``target``, with the line where they agree."""
    alt = altair()

    points = summary.get("held_out") or {}
    if not points.get("actual"):
        return None
    values = [
        {"actual": a, "predicted": p}
        for a, p in zip(points["actual"], points["predicted"], strict=True)
    ]
    low = min(min(points["actual"]), min(points["predicted"]))
    high = max(max(points["actual"]), max(points["predicted"]))
    agree = (
        alt.Chart(alt.Data(values=[{"a": low, "b": low}, {"a": high, "b": high}]))
        .mark_line(strokeDash=[4, 4], color="#999")
        .encode(x="a:Q", y="b:Q")
    )
    seen = (
        alt.Chart(alt.Data(values=values), title=f"{target}: held-out rows")
        .mark_circle(size=18, opacity=0.5, color="#4c78a8")
        .encode(
            x=alt.X("actual:Q", title=f"actual {target}"), y=alt.Y("predicted:Q", title="predicted")
        )
    )
    return (seen + agree).properties(width=360, height=300)
