"""The model stage of a run: each blueprint's model, found in one registry, fitted or applied.

A blueprint with an entry in :data:`MODELS` gets a model when its processed rows allow one.
``fit`` learns from a run's processed rows and returns predictions (one row per prediction
unit, with ``prediction`` and ``confidence`` in [0, 1]), a summary for the run's record and
the report, and ``saved``: everything ``apply`` needs to score new processed rows without
refitting (written with skops beside the run's files). Without what a model needs, ``fit``
says why instead, and no heuristic score is presented as a prediction.

``confidence`` per blueprint:

- customer_churn: ``|2 p - 1|``, how far the probability is from a coin flip (0 at 0.5, 1 at 0 or 1);
- revenue_projection: ``max(0, 1 - (upper - lower) / (2 |prediction|))`` with the 80% interval,
  1 for a point forecast, 0 once the interval's half-width reaches the forecast itself;
- price_optimization: the same with the elasticity's 95% interval; 0 when not identifiable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracer_kit.blueprints.customer_churn import BLUEPRINT as CHURN
from tracer_kit.config import ModelConfig
from tracer_kit.engine import (
    count_rows,
    fit_rows,
    map_batches,
    on_spark,
    per_group,
    small_frame,
    write_rows,
)
from tracer_kit.errors import option
from tracer_kit.model.churn import LEAKAGE_AUC, fit_churn, label_values
from tracer_kit.model.extras import extra_columns, plan_extras, with_extras
from tracer_kit.model.forecast import fit_forecast, forecast_from
from tracer_kit.model.pricing import Elasticity, expected_quantity, fit_elasticity
from tracer_kit.model.saved import save_model
from tracer_kit.preprocess import write_in_batches
from tracer_kit.quality.matching import label_like
from tracer_kit.settings import settings
from tracer_kit.types import Issue

__all__ = ["MODELS", "BlueprintModel", "ModelOutcome", "apply_model", "fit_model", "headline"]


#: Rows scored per batch: scikit-learn's pandas input copies a batch a few times over.
SCORE_BATCH_ROWS = 200_000


@dataclass
class ModelOutcome:
    """What the model stage produced: predictions, a summary and the saved model, or why none.

    Predictions are either ``predictions`` (a small frame) or ``score`` applied to
    ``score_rows`` batch by batch (:meth:`write_predictions`), so scoring a big file streams.
    """

    summary: dict[str, Any]
    predictions: pl.DataFrame | None = None
    saved: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    training_rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    score: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    score_rows: pl.LazyFrame | None = None
    #: The columns ``score`` returns (so Spark need not score a row to learn them).
    score_schema: pl.Schema | None = None
    #: The processed rows the outcome came from: their engine writes the predictions.
    processed: Any = None

    @property
    def has_predictions(self) -> bool:
        """Whether there is anything to write."""
        return self.predictions is not None or self.score is not None

    def save(self, path: Path) -> Path | None:
        """Write the fitted model to ``path`` with skops; None when the stage saved none."""
        return None if self.saved is None else save_model(self.saved, path)

    def write_predictions(self, path: Path) -> int:
        """Write the predictions to ``path`` (Parquet); returns their rows.

        When the processed rows are a Spark frame, the executors score the rows batch by
        batch and write part files in the folder ``path``.
        """
        if self.predictions is not None:
            if self.processed is not None and on_spark(self.processed):
                return write_rows(small_frame(self.processed, self.predictions), path)
            self.predictions.write_parquet(path)
            return self.predictions.height
        if self.score is None or self.score_rows is None:
            msg = "this outcome has no predictions"
            raise ValueError(msg)
        if on_spark(self.score_rows):
            scored = map_batches(self.score_rows, self.score, schema=self.score_schema)
            return write_rows(scored, path)

        return write_in_batches(
            self.score, self.score_rows, path, batch_rows=SCORE_BATCH_ROWS, slices=True
        )


@dataclass(frozen=True)
class BlueprintModel:
    """A blueprint's model: ``fit(processed, config)`` and ``apply(saved, processed, config)``."""

    kind: str
    fit: Callable[[pl.LazyFrame, ModelConfig], ModelOutcome]
    apply: Callable[[dict[str, Any], pl.LazyFrame, ModelConfig], ModelOutcome]


def _relative_confidence(estimate: pl.Expr, lower: pl.Expr, upper: pl.Expr) -> pl.Expr:
    width = (upper - lower) / (2 * estimate.abs())
    return (1 - width).clip(0.0, 1.0).fill_nan(0.0).fill_null(0.0)


# -- customer_churn --------------------------------------------------------------------------

#: Minimum labelled rows of each class for a churn model.
MIN_PER_CLASS = 20
#: Features computed from whole-file statistics: left out of the churn model, whose
#: preprocessing must learn from the training part only; their row-level parts are inputs.
WHOLE_FILE_FEATURES = ("value_tier", "engagement_score")
#: The churn model's inputs: the row-level features and the raw numbers and plan behind them.
CHURN_INPUTS = (
    *(f for f in CHURN.feature_names if f not in WHOLE_FILE_FEATURES),
    "total_value",
    "support_tickets",
    "feature_usage_count",
    "plan_type",
)


def churn_scorer(estimator: Any, inputs: list[str]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """``rows -> customer_id, prediction (probability of churn), confidence (|2p - 1|)``."""

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        p = estimator.predict_proba(rows.select(inputs).to_pandas())[:, 1]
        return rows.select("customer_id").with_columns(
            prediction=pl.Series(p, dtype=pl.Float64),
            confidence=pl.Series(np.abs(2 * p - 1), dtype=pl.Float64),
        )

    return score


def churn_score_schema(rows: Any) -> pl.Schema:
    """The columns :func:`churn_scorer`'s ``score`` returns for ``rows``."""
    key = rows.collect_schema()["customer_id"]
    return pl.Schema({"customer_id": key, "prediction": pl.Float64, "confidence": pl.Float64})


def _class_counts(processed: pl.LazyFrame, positive: str | None) -> dict[int, int]:
    label = label_values(pl.col("churned"), positive).alias("y")
    counts = processed.select(label).group_by("y").len().collect(engine="streaming")
    return {y: n for y, n in counts.iter_rows() if y is not None}


def _no_label(processed: pl.LazyFrame, cfg: ModelConfig) -> str:
    """Why there is no churn model, naming a column that looks like the label when there is one."""
    need = f"at least {MIN_PER_CLASS} churned and {MIN_PER_CLASS} retained customers"
    if cfg.label is not None or cfg.positive is not None:
        return f"no churn model: the label needs {need}"
    extras = extra_columns(processed.select("extras").head(1000).collect())
    found = label_like(extras)
    if found:
        return (
            f"no churn model: column {found[0]!r} looks like the label; run with "
            f"{option('label', value=found[0])} (and {option('positive', value='VALUE')} when "
            f"its values are not yes/no, true/false or 1/0); the label needs {need}"
        )
    return (
        "no churn model: add a 'churned' column (yes/no, true/false, 1/0) or name your label "
        f"column with {option('label', value='COLUMN')}; it needs {need}"
    )


def _usable_inputs(rows: pl.DataFrame, inputs: list[str]) -> tuple[list[str], list[str]]:
    """The inputs with at least one value in the training rows, and those empty in all."""
    empty = [c for c in inputs if rows.get_column(c).null_count() == rows.height]
    return [c for c in inputs if c not in empty], empty


def _leak_issues(m: Any) -> list[Issue]:
    """One high issue per input the leakage guard left out."""
    return [
        Issue(
            severity="high",
            column=name,
            check="leakage",
            observed=auc,
            threshold=LEAKAGE_AUC,
            rows_affected=m.rows_train,
            message=(
                f"{name} alone separates churned from retained customers (cross-validated AUC "
                f"{auc} on the training part, above {LEAKAGE_AUC}): a leak of the label? It was "
                "left out of the churn model"
            ),
        )
        for name, auc in m.left_out.items()
    ]


def _churn_summary(
    m: Any,
    per_class: dict[int, int],
    used: dict[str, Any],
    skipped: dict[str, str],
    empty: list[str],
) -> dict[str, Any]:
    """The run record's ``model`` for a fitted churn model."""
    return {
        "model": m.chosen,
        "inputs": m.inputs,
        "left_out": m.left_out,
        "cv_log_loss": m.cv_log_loss,
        "metrics": m.metrics,
        "baseline": m.baseline,
        "importance": m.importance,
        "rows_labelled": sum(per_class.values()),
        "extras": {"used": {k: v for k, v in used.items() if k in m.inputs}, "left_out": skipped},
        "empty_inputs": empty,
        "rows_train": m.rows_train,
        "rows_test": m.rows_test,
        "roc": m.roc,
        "calibration": m.calibration,
        "confusion": m.confusion,
    }


def _fit_churn(processed: pl.LazyFrame, cfg: ModelConfig) -> ModelOutcome:
    per_class = _class_counts(processed, cfg.positive)
    if min(per_class.get(0, 0), per_class.get(1, 0)) < MIN_PER_CLASS:
        why = _no_label(processed, cfg)
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    names = processed.collect_schema().names()
    inputs = [c for c in CHURN_INPUTS if c in names]
    labelled = processed.select(
        "source_row", "customer_id", *inputs, "churned", *(["extras"] if "extras" in names else [])
    ).filter(label_values(pl.col("churned"), cfg.positive).is_not_null())
    n = sum(per_class.values())
    rows = fit_rows(labelled, settings.model_fit_rows, rows=n).drop("source_row")
    used, skipped = plan_extras(rows) if "extras" in rows.columns else ({}, {})
    rows = with_extras(rows, used)
    inputs, empty = _usable_inputs(rows, [*inputs, *used])
    m = fit_churn(
        rows,
        inputs,
        test_size=cfg.test_size,
        seed=cfg.seed,
        candidates=cfg.candidates,
        positive=cfg.positive,
    )
    issues = _leak_issues(m)
    summary = _churn_summary(m, per_class, used, skipped, empty)
    extras = {k: v for k, v in used.items() if k in m.inputs}
    saved = {"estimator": m.estimator, "inputs": m.inputs, "extras": extras}
    score = churn_scorer(m.estimator, m.inputs)
    rows_to_score = with_extras(processed, extras).select("customer_id", *m.inputs)
    return ModelOutcome(
        summary,
        None,
        saved,
        [],
        m.rows_train,
        issues,
        score,
        rows_to_score,
        churn_score_schema(rows_to_score),
    )


def _apply_churn(saved: dict[str, Any], processed: pl.LazyFrame, cfg: ModelConfig) -> ModelOutcome:
    rows = with_extras(processed, saved.get("extras") or {}).select("customer_id", *saved["inputs"])
    score = churn_scorer(saved["estimator"], saved["inputs"])
    return ModelOutcome({}, score=score, score_rows=rows, score_schema=churn_score_schema(rows))


# -- revenue_projection ----------------------------------------------------------------------

#: Fewest days for a backtest of three origins of a week.
MIN_DAYS = 28 + 3 * 7


def _backtest_horizon(days: int, horizon: int) -> int:
    """The forecast horizon when the history allows three origins of it, else the longest that fits."""
    return max(min(horizon, (days - 28) // 3), 7)


def _forecast_rows(f: Any) -> pl.DataFrame:
    rows = pl.DataFrame(
        {
            "date": f.dates,
            "prediction": f.prediction,
            "lower": f.lower_80,
            "upper": f.upper_80,
            "lower_95": f.lower_95,
            "upper_95": f.upper_95,
        },
        schema_overrides={"date": pl.Date},
    )
    return rows.with_columns(
        confidence=_relative_confidence(pl.col("prediction"), pl.col("lower"), pl.col("upper"))
    )


def _daily(processed: pl.DataFrame) -> tuple[list[Any], np.ndarray]:
    daily = processed.sort("date")
    return daily.get_column("date").to_list(), daily.get_column("revenue").to_numpy()


def _fit_revenue(processed: pl.LazyFrame, cfg: ModelConfig) -> ModelOutcome:
    dates, values = _daily(processed.select("date", "revenue").collect())
    if len(dates) < MIN_DAYS:
        why = f"no revenue forecast: {len(dates)} days of history, at least {MIN_DAYS} needed"
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    test_horizon = _backtest_horizon(len(dates), cfg.horizon)
    backtested = fit_forecast(
        dates, values, horizon=test_horizon, origins=3, candidates=cfg.candidates
    )
    f = forecast_from(backtested.saved, dates, values, cfg.horizon)
    totals = {
        f"next_{d}_days": float(f.prediction[:d].sum())
        for d in sorted({30, cfg.horizon})
        if d <= cfg.horizon
    }
    summary = {
        "model": f.chosen,
        "scores": backtested.scores,
        "origins": backtested.origins,
        "backtest_horizon": test_horizon,
        "horizon": cfg.horizon,
        "totals": totals,
        "history_days": len(dates),
        "history": {
            "date": [d.isoformat() for d in dates[-180:]],
            "revenue": values[-180:].tolist(),
        },
    }
    return ModelOutcome(summary, _forecast_rows(f), backtested.saved, training_rows=len(dates))


def _apply_revenue(
    saved: dict[str, Any], processed: pl.LazyFrame, cfg: ModelConfig
) -> ModelOutcome:
    dates, values = _daily(processed.select("date", "revenue").collect())
    return ModelOutcome({}, _forecast_rows(forecast_from(saved, dates, values, cfg.horizon)))


# -- price_optimization ----------------------------------------------------------------------


def _product_arrays(rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dates = rows.get_column("date")
    weekday = (dates.dt.weekday() - 1).to_numpy()  # 0 = Monday
    day = dates.cast(pl.Int64).to_numpy()  # days since 1970-01-01
    return rows.get_column("price").to_numpy(), weekday, day


def _elasticity_row(product: Any, e: Elasticity) -> dict[str, Any]:
    return {
        "product_id": product,
        "prediction": e.elasticity,
        "lower": e.lower,
        "upper": e.upper,
        "optimal_price": e.best_price,
        "identifiable": e.identifiable,
        "r2": e.r2,
        "n": e.n,
        "why": e.why,
    }


#: A price prediction row: one product's elasticity, its interval, best price and confidence.
_ELASTICITY_SCHEMA = {
    "product_id": pl.String,
    "prediction": pl.Float64,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "optimal_price": pl.Float64,
    "identifiable": pl.Boolean,
    "confidence": pl.Float64,
}

#: One product's fit as a row: its elasticity (``_elasticity_row``) and saved demand model.
_PRODUCT_FIT_SCHEMA = {
    **{k: v for k, v in _ELASTICITY_SCHEMA.items() if k != "confidence"},
    "r2": pl.Float64,
    "n": pl.Int64,
    "why": pl.String,
    "coefficients": pl.List(pl.Float64),
    "sigma2": pl.Float64,
    "trend": pl.List(pl.Float64),
}


def _product_fit(rows: pl.LazyFrame) -> pl.LazyFrame:
    """One product's rows (any order) -> one row: its fitted elasticity and demand model."""
    part = rows.collect().sort("date", maintain_order=True)
    if part.height == 0:
        return pl.LazyFrame(schema=_PRODUCT_FIT_SCHEMA)
    price, weekday, day = _product_arrays(part)
    cost = part.get_column("cost").median() if "cost" in part.columns else None
    e = fit_elasticity(price, part.get_column("quantity_sold").to_numpy(), weekday, day, cost=cost)
    row = {**_elasticity_row(part.get_column("product_id")[0], e), **_saved_elasticity(e)}
    return pl.LazyFrame([row], schema=_PRODUCT_FIT_SCHEMA)


def _fit_price(processed: Any, cfg: ModelConfig) -> ModelOutcome:
    """One demand model per product, fitted where its rows are (per group on Spark's executors)."""
    names = processed.collect_schema().names()
    columns = [c for c in ("product_id", "date", "price", "quantity_sold", "cost") if c in names]
    fits = per_group(processed.select(columns), ["product_id"], _product_fit)
    table = fits.collect().sort("product_id")
    saved_columns = ["coefficients", "sigma2", "trend"]
    columns = [c for c in _ELASTICITY_SCHEMA if c != "confidence"]
    predictions = table.select(pl.col(c).cast(_ELASTICITY_SCHEMA[c]) for c in columns).with_columns(
        confidence=_relative_confidence(pl.col("prediction"), pl.col("lower"), pl.col("upper"))
    )
    summary = {
        "model": "log_log_ols",
        "products": table.drop(saved_columns).to_dicts(),
        "identifiable": int(table.get_column("identifiable").sum()),
        "profit": "cost" in names,
    }
    saved = {
        "products": {
            str(r["product_id"]): {k: r[k] for k in saved_columns}
            for r in table.select("product_id", *saved_columns).iter_rows(named=True)
        },
        "elasticities": predictions.to_dict(as_series=False),
    }
    return ModelOutcome(summary, predictions, saved, training_rows=count_rows(processed))


def _saved_elasticity(e: Elasticity) -> dict[str, Any]:
    return {
        "coefficients": [float(c) for c in e.coefficients or ()],
        "sigma2": None if e.sigma2 is None else float(e.sigma2),
        "trend": [float(t) for t in e.trend or ()],
    }


def _expected(model: dict[str, Any] | None, part: pl.DataFrame) -> pl.Series:
    """Expected units at each row's price from a product's saved demand model (null without one)."""
    price, weekday, day = _product_arrays(part)
    if not model or not model["coefficients"]:
        return pl.Series("expected_quantity", [None] * part.height, dtype=pl.Float64)
    e = Elasticity(
        True,
        0,
        coefficients=tuple(model["coefficients"]),
        sigma2=model["sigma2"],
        trend=(model["trend"][0], model["trend"][1]),
    )
    return pl.Series("expected_quantity", expected_quantity(e, price, weekday, day))


def _apply_price(saved: dict[str, Any], processed: pl.LazyFrame, cfg: ModelConfig) -> ModelOutcome:
    """Per row: expected units sold at its price, beside its product's saved elasticity."""
    rows = processed.select("product_id", "date", "price").collect().sort("product_id", "date")
    parts = rows.partition_by("product_id", maintain_order=True)
    expected = [
        part.with_columns(_expected(saved["products"].get(str(part["product_id"][0])), part))
        for part in parts
    ]
    scored = (
        pl.concat(expected)
        if expected
        else rows.with_columns(expected_quantity=pl.lit(None, pl.Float64))
    )
    per_product = pl.DataFrame(saved["elasticities"], schema=_ELASTICITY_SCHEMA)
    return ModelOutcome({}, scored.join(per_product, on="product_id", how="left"))


#: Each blueprint's model, by blueprint name.
MODELS: dict[str, BlueprintModel] = {
    "customer_churn": BlueprintModel("calibrated_classifier", _fit_churn, _apply_churn),
    "revenue_projection": BlueprintModel("backtested_forecast", _fit_revenue, _apply_revenue),
    "price_optimization": BlueprintModel("constant_elasticity", _fit_price, _apply_price),
}


def fit_model(
    processed: pl.LazyFrame, blueprint: str, config: ModelConfig | None = None
) -> ModelOutcome | None:
    """The blueprint's model fitted on its processed rows, or None when it has no model stage."""
    model = MODELS.get(blueprint)
    if model is None:
        return None
    return replace(model.fit(processed, config or ModelConfig()), processed=processed)


def apply_model(
    saved: dict[str, Any],
    processed: pl.LazyFrame,
    blueprint: str,
    config: ModelConfig | None = None,
) -> ModelOutcome:
    """Predictions of a saved model on new processed rows (no refitting)."""
    outcome = MODELS[blueprint].apply(saved, processed, config or ModelConfig())
    return replace(outcome, processed=processed)


def headline(blueprint: str, summary: dict[str, Any]) -> str | None:
    """One plain sentence on what the model found (None without a model)."""
    if not summary or summary.get("model") is None:
        return summary.get("why") if summary else None
    if summary["model"] == "saved":
        return (
            f"{summary['rows']} prediction(s) from the saved model of run {summary['trained_by']}"
        )
    if blueprint == "customer_churn":
        m, b = summary["metrics"], summary["baseline"]
        return (
            f"churn model ({summary['model']}): held-out ROC AUC {m['roc_auc']:.3f}, Brier "
            f"{m['brier']:.3f} (base rate {b['brier']:.3f}); the top 10% of customers by risk hold "
            f"{m['capture_top_decile']:.0%} of the churners"
        )
    if blueprint == "revenue_projection":
        s = summary["scores"][summary["model"]]
        total = summary["totals"].get("next_30_days")
        lead = f"revenue forecast ({summary['model']}): MASE {s['mase']:.2f} in the backtest"
        return lead + (f"; the next 30 days total {total:,.0f}" if total is not None else "")
    if blueprint == "price_optimization":
        n = len(summary["products"])
        return f"price model: an elasticity for {summary['identifiable']} of {n} products"
    return None
