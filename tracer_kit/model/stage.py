"""The model stage of a run: the blueprint's model task, found in one registry, fitted or applied.

A blueprint declares its model (:class:`~tracer_kit.blueprints.ModelSpec`): a task named in
:data:`MODEL_TASKS` and the columns it uses. The task is resolved once, by name, and gets a
model when the processed rows allow one.
``fit`` learns from a run's processed rows and returns predictions (one row per prediction
unit, with ``prediction`` and ``confidence`` in [0, 1]), a summary for the run's record and
the report, and ``saved``: everything ``apply`` needs to score new processed rows without
refitting (written with skops beside the run's files). Without what a model needs, ``fit``
says why instead, and no heuristic score is presented as a prediction.

``confidence`` per task:

- churn and classification: ``|2 p - 1|``, how far the probability is from a coin flip (0 at
  0.5, 1 at 0 or 1);
- forecast (revenue_projection): ``max(0, 1 - (upper - lower) / (2 |prediction|))`` with the
  80% interval, 1 for a point forecast, 0 once the interval's half-width reaches the forecast;
- regression: the same with the 80% interval from the held-out errors;
- elasticity (price_optimization): the same with the elasticity's 95% interval; 0 when not
  identifiable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracer_kit.blueprints import Blueprint, ModelSpec
from tracer_kit.config import ModelConfig
from tracer_kit.engine import count_rows, engine_of, fit_rows, per_group, small_frame, write_rows
from tracer_kit.errors import BlueprintError, option
from tracer_kit.model.churn import LEAKAGE_AUC, fit_churn, label_values
from tracer_kit.model.compiled import compile_classifier, sklearn_probabilities
from tracer_kit.model.extras import extra_columns, plan_extras, with_extras
from tracer_kit.model.forecast import fit_forecast, forecast_from
from tracer_kit.model.plots import churn_chart, elasticity_chart, forecast_chart, regression_chart
from tracer_kit.model.pricing import Elasticity, expected_quantity, fit_elasticity
from tracer_kit.model.regression import MIN_ROWS, fit_regression
from tracer_kit.model.saved import save_model
from tracer_kit.quality.matching import label_like
from tracer_kit.settings import settings
from tracer_kit.types import Issue

__all__ = [
    "MODEL_OFF",
    "MODEL_TASKS",
    "ModelOutcome",
    "ModelTask",
    "apply_model",
    "fit_model",
    "headline",
    "model_chart",
    "model_inputs",
    "model_task",
    "prediction_id",
    "register_model_task",
    "task_words",
]


#: Why a run has no model when its model stage is turned off (``--no-model``).
MODEL_OFF = "the model stage is turned off (--no-model)"


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
            like = self.processed if self.processed is not None else self.predictions
            return write_rows(small_frame(like, self.predictions), path)
        if self.score is None or self.score_rows is None:
            msg = "this outcome has no predictions"
            raise ValueError(msg)
        return engine_of(self.score_rows).write_batches(
            self.score_rows, self.score, path, schema=self.score_schema
        )


Fit = Callable[[pl.LazyFrame, Blueprint, ModelConfig], ModelOutcome]
Apply = Callable[[dict[str, Any], pl.LazyFrame, Blueprint, ModelConfig], ModelOutcome]


@dataclass(frozen=True)
class ModelTask:
    """A model task: how it fits, applies, says what it found and draws it.

    ``fit(processed, blueprint, config)`` and ``apply(saved, processed, blueprint, config)``
    return a :class:`ModelOutcome`; ``headline(blueprint, summary)`` is the one sentence the
    CLI, report and notebook print; ``chart(blueprint, summary, predictions)`` the picture
    (or None); ``words`` what its rows and positives are called.
    """

    kind: str
    fit: Fit
    apply: Apply
    headline: Callable[[Blueprint, dict[str, Any]], str | None]
    chart: Callable[[Blueprint, dict[str, Any], pl.DataFrame], Any | None]


def _relative_confidence(estimate: pl.Expr, lower: pl.Expr, upper: pl.Expr) -> pl.Expr:
    width = (upper - lower) / (2 * estimate.abs())
    return (1 - width).clip(0.0, 1.0).fill_nan(0.0).fill_null(0.0)


# -- classification (customer_churn's churn is one) -------------------------------------------

#: Minimum labelled rows of each class for a classification model.
MIN_PER_CLASS = 20

#: Text kinds never used as model inputs by default (free text, contact details).
_NOT_INPUTS = frozenset({"id", "string", "email", "url", "phone", "date", "datetime"})


def prediction_id(blueprint: Blueprint) -> str:
    """The column a prediction row is for: the model's ``id``, the identifier, else ``source_row``."""
    spec = blueprint.model
    return (spec.id if spec else None) or blueprint.identifier or "source_row"


def model_inputs(blueprint: Blueprint) -> tuple[str, ...]:
    """The model's inputs: declared, else every number, flag and category of the rows but the
    label or target, identifiers, dates and personal fields.
    """  # noqa: D205
    spec = blueprint.model
    if spec is not None and spec.inputs is not None:
        return spec.inputs
    skip = {blueprint.label, *(s for s in (spec.label, spec.target) if spec and s)}
    skip |= {blueprint.identifier, *blueprint.key, *blueprint.personal}
    fields = [f.name for f in blueprint.fields if f.kind not in _NOT_INPUTS and f.name not in skip]
    features = [
        f.name
        for f in blueprint.features
        if (f.dtype.is_numeric() or f.dtype in (pl.Boolean, pl.String)) and f.name not in skip
    ]
    return tuple(dict.fromkeys([*fields, *features]))


def task_words(blueprint: Blueprint) -> dict[str, str]:
    """What a classification's rows and classes are called (churn's, or generic words)."""
    spec = blueprint.model
    if spec is not None and spec.task == "churn":
        return {
            "model": "churn", "rows": "customers", "yes": "churned", "no": "retained",
            "positives": "churners", "event": "churn", "id": prediction_id(blueprint),
        }  # fmt: skip
    return {
        "model": "classification", "rows": "rows", "yes": "positive", "no": "negative",
        "positives": "positives", "event": f"{blueprint.label}", "id": prediction_id(blueprint),
    }  # fmt: skip


def classification_scorer(
    estimator: Any, inputs: list[str], key: str = "customer_id"
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """``rows -> key, prediction (probability of the positive class), confidence (|2p - 1|)``.

    The model scores as polars expressions when its steps compile
    (:mod:`tracer_kit.model.compiled`), else through scikit-learn.
    """
    compiled = compile_classifier(estimator, inputs)
    proba = compiled if compiled is not None else partial(sklearn_probabilities, estimator, inputs)

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        p = proba(rows)
        return rows.select(key).with_columns(
            prediction=pl.Series(p, dtype=pl.Float64),
            confidence=pl.Series(np.abs(2 * p - 1), dtype=pl.Float64),
        )

    return score


def _score_schema(rows: Any, key: str) -> pl.Schema:
    """The columns a scorer returns for ``rows``: the key, prediction and confidence."""
    return pl.Schema(
        {key: rows.collect_schema()[key], "prediction": pl.Float64, "confidence": pl.Float64}
    )


def _class_counts(processed: pl.LazyFrame, label: str, positive: str | None) -> dict[int, int]:
    y = label_values(pl.col(label), positive).alias("y")
    counts = processed.select(y).group_by("y").len().collect(engine="streaming")
    return {y: n for y, n in counts.iter_rows() if y is not None}


def _no_label(processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig) -> str:
    """Why there is no model, naming a column that looks like the label when there is one."""
    w = task_words(blueprint)
    label = blueprint.model.label if blueprint.model else None
    need = f"at least {MIN_PER_CLASS} {w['yes']} and {MIN_PER_CLASS} {w['no']} {w['rows']}"
    if w["model"] != "churn":
        return f"no classification model: {label!r} needs {need}"
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
        f"no churn model: add a {label!r} column (yes/no, true/false, 1/0) or name your label "
        f"column with {option('label', value='COLUMN')}; it needs {need}"
    )


def _usable_inputs(rows: pl.DataFrame, inputs: list[str]) -> tuple[list[str], list[str]]:
    """The inputs with at least one value in the training rows, and those empty in all."""
    empty = [c for c in inputs if rows.get_column(c).null_count() == rows.height]
    return [c for c in inputs if c not in empty], empty


def _leak_issues(m: Any, words: dict[str, str]) -> list[Issue]:
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
                f"{name} alone separates {words['yes']} from {words['no']} {words['rows']} "
                f"(cross-validated AUC {auc} on the training part, above {LEAKAGE_AUC}): a leak "
                f"of the label? It was left out of the {words['model']} model"
            ),
        )
        for name, auc in m.left_out.items()
    ]


def _classification_summary(
    m: Any,
    per_class: dict[int, int],
    used: dict[str, Any],
    skipped: dict[str, str],
    empty: list[str],
) -> dict[str, Any]:
    """The run record's ``model`` for a fitted classifier."""
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


def _training_rows(
    processed: pl.LazyFrame, blueprint: Blueprint, keep: pl.Expr, n: int
) -> tuple[pl.DataFrame, list[str], dict[str, Any], dict[str, str], list[str]]:
    """An even spread of the rows ``keep`` selects (the key, the inputs, the label or target,
    the usable extras); returns them, the usable inputs, the extras used and left out, and the
    inputs empty in every row.
    """  # noqa: D205
    assert blueprint.model is not None
    names = processed.collect_schema().names()
    key, predicted = prediction_id(blueprint), blueprint.label
    inputs = [c for c in model_inputs(blueprint) if c in names and c not in (key, predicted)]
    columns = dict.fromkeys(["source_row", key, *inputs, predicted])
    extras = ["extras"] if "extras" in names else []
    labelled = processed.select(*columns, *extras).filter(keep)
    rows = fit_rows(labelled, settings.model_fit_rows, rows=n)
    rows = rows.drop("source_row") if key != "source_row" else rows
    used, skipped = plan_extras(rows) if extras else ({}, {})
    rows = with_extras(rows, used)
    usable, empty = _usable_inputs(rows, [*inputs, *used])
    return rows, usable, used, skipped, empty


def _fit_classification(
    processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
    label, key = blueprint.label, prediction_id(blueprint)
    assert label is not None
    per_class = _class_counts(processed, label, cfg.positive)
    if min(per_class.get(0, 0), per_class.get(1, 0)) < MIN_PER_CLASS:
        why = _no_label(processed, blueprint, cfg)
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    labelled = label_values(pl.col(label), cfg.positive).is_not_null()
    rows, inputs, used, skipped, empty = _training_rows(
        processed, blueprint, labelled, sum(per_class.values())
    )
    m = fit_churn(
        rows,
        inputs,
        label=label,
        test_size=cfg.test_size,
        seed=cfg.seed,
        candidates=cfg.candidates,
        positive=cfg.positive,
    )
    extras = {k: v for k, v in used.items() if k in m.inputs}
    saved = {"estimator": m.estimator, "inputs": m.inputs, "extras": extras}
    rows_to_score = with_extras(processed, extras).select(key, *m.inputs)
    return ModelOutcome(
        _classification_summary(m, per_class, used, skipped, empty),
        None,
        saved,
        [],
        m.rows_train,
        _leak_issues(m, task_words(blueprint)),
        classification_scorer(m.estimator, m.inputs, key),
        rows_to_score,
        _score_schema(rows_to_score, key),
    )


def _apply_classification(
    saved: dict[str, Any], processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
    key = prediction_id(blueprint)
    rows = with_extras(processed, saved.get("extras") or {}).select(key, *saved["inputs"])
    score = classification_scorer(saved["estimator"], saved["inputs"], key)
    return ModelOutcome({}, score=score, score_rows=rows, score_schema=_score_schema(rows, key))


def _classification_headline(blueprint: Blueprint, summary: dict[str, Any]) -> str:
    m, b, w = summary["metrics"], summary["baseline"], task_words(blueprint)
    label = "" if w["model"] == "churn" else f" of {blueprint.label}"
    return (
        f"{w['model']} model{label} ({summary['model']}): held-out ROC AUC {m['roc_auc']:.3f}, "
        f"Brier {m['brier']:.3f} (base rate {b['brier']:.3f}); the top 10% of {w['rows']} by "
        f"risk hold {m['capture_top_decile']:.0%} of the {w['positives']}"
    )


def _classification_chart(blueprint: Blueprint, summary: dict[str, Any], _: pl.DataFrame) -> Any:
    w = task_words(blueprint)
    rate = "churn rate" if w["model"] == "churn" else f"rate of {blueprint.label}"
    return churn_chart(summary, rows=w["rows"], rate=rate)


# -- regression --------------------------------------------------------------------------------


def _regression_scorer(
    estimator: Any, inputs: list[str], key: str, interval: tuple[float, float]
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """``rows -> key, prediction, lower, upper (80%), confidence``."""
    low, high = interval

    def score(rows: pl.DataFrame) -> pl.DataFrame:
        p = pl.Series(estimator.predict(rows.select(inputs).to_pandas()), dtype=pl.Float64)
        out = rows.select(key).with_columns(prediction=p, lower=p + low, upper=p + high)
        return out.with_columns(
            confidence=_relative_confidence(pl.col("prediction"), pl.col("lower"), pl.col("upper"))
        )

    return score


def _regression_schema(rows: Any, key: str) -> pl.Schema:
    floats = dict.fromkeys(("prediction", "lower", "upper", "confidence"), pl.Float64)
    return pl.Schema({key: rows.collect_schema()[key], **floats})


def _fit_regression(
    processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
    target, key = blueprint.label, prediction_id(blueprint)
    assert target is not None
    has_target = pl.col(target).is_not_null()
    n = processed.select(has_target.sum()).collect(engine="streaming").item()
    if n < MIN_ROWS:
        why = f"no regression model: {target!r} has {n} value(s), at least {MIN_ROWS} needed"
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    rows, inputs, used, skipped, empty = _training_rows(processed, blueprint, has_target, n)
    m = fit_regression(
        rows, inputs, target, test_size=cfg.test_size, seed=cfg.seed, candidates=cfg.candidates
    )
    extras = {k: v for k, v in used.items() if k in m.inputs}
    saved = {
        "estimator": m.estimator,
        "inputs": m.inputs,
        "extras": extras,
        "interval": list(m.interval),
    }
    summary = {
        "model": m.chosen,
        "target": target,
        "inputs": m.inputs,
        "cv_rmse": m.cv_rmse,
        "metrics": m.metrics,
        "baseline": m.baseline,
        "importance": m.importance,
        "interval": list(m.interval),
        "held_out": m.held_out,
        "extras": {"used": extras, "left_out": skipped},
        "empty_inputs": empty,
        "rows_train": m.rows_train,
        "rows_test": m.rows_test,
    }
    rows_to_score = with_extras(processed, extras).select(key, *m.inputs)
    score = _regression_scorer(m.estimator, m.inputs, key, m.interval)
    return ModelOutcome(
        summary, None, saved, [], m.rows_train, [], score, rows_to_score,
        _regression_schema(rows_to_score, key),
    )  # fmt: skip


def _apply_regression(
    saved: dict[str, Any], processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
    key = prediction_id(blueprint)
    rows = with_extras(processed, saved.get("extras") or {}).select(key, *saved["inputs"])
    interval = (saved["interval"][0], saved["interval"][1])
    score = _regression_scorer(saved["estimator"], saved["inputs"], key, interval)
    return ModelOutcome(
        {}, score=score, score_rows=rows, score_schema=_regression_schema(rows, key)
    )


def _regression_headline(blueprint: Blueprint, summary: dict[str, Any]) -> str:
    m, b = summary["metrics"], summary["baseline"]
    return (
        f"regression model of {summary['target']} ({summary['model']}): held-out MAE "
        f"{m['mae']:.4g}, RMSE {m['rmse']:.4g}, R² {m['r2']:.3f} (predicting the mean: MAE "
        f"{b['mae']:.4g}, RMSE {b['rmse']:.4g})"
    )


# -- revenue_projection ----------------------------------------------------------------------

#: Fewest days for a backtest of three origins of a week.
MIN_DAYS = 28 + 3 * 7


def _horizon(spec: ModelSpec, cfg: ModelConfig) -> int:
    """Days ahead: the config's when set there, else the blueprint's, else the config default."""
    if "horizon" in cfg.model_fields_set or spec.horizon is None:
        return cfg.horizon
    return spec.horizon


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


def _daily(processed: Any, spec: ModelSpec) -> tuple[list[Any], np.ndarray]:
    """The series: ``value`` summed per ``date`` (a row per date already: itself), by date.

    The two columns are brought to the driver, then summed there: a forecast's history is
    small (revenue_projection's rows are one per day).
    """
    rows = processed.select(spec.date, spec.value).collect()
    daily = (
        rows.select(
            pl.col(spec.date).cast(pl.Date).alias("date"),
            pl.col(spec.value).cast(pl.Float64).alias("value"),
        )
        .drop_nulls("date")
        .group_by("date")
        .agg(pl.col("value").sum())
        .sort("date")
    )
    return daily.get_column("date").to_list(), daily.get_column("value").to_numpy()


def _fit_forecast(processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig) -> ModelOutcome:
    spec = blueprint.model
    assert spec is not None and spec.value is not None
    dates, values = _daily(processed, spec)
    if len(dates) < MIN_DAYS:
        why = f"no {spec.value} forecast: {len(dates)} days of history, at least {MIN_DAYS} needed"
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    horizon = _horizon(spec, cfg)
    test_horizon = _backtest_horizon(len(dates), horizon)
    backtested = fit_forecast(
        dates, values, horizon=test_horizon, origins=3, candidates=cfg.candidates
    )
    f = forecast_from(backtested.saved, dates, values, horizon)
    totals = {
        f"next_{d}_days": float(f.prediction[:d].sum())
        for d in sorted({30, horizon})
        if d <= horizon
    }
    summary = {
        "model": f.chosen,
        "scores": backtested.scores,
        "origins": backtested.origins,
        "backtest_horizon": test_horizon,
        "horizon": horizon,
        "totals": totals,
        "history_days": len(dates),
        "history": {
            "date": [d.isoformat() for d in dates[-180:]],
            spec.value: values[-180:].tolist(),
        },
    }
    return ModelOutcome(summary, _forecast_rows(f), backtested.saved, training_rows=len(dates))


def _apply_forecast(
    saved: dict[str, Any], processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
    assert blueprint.model is not None
    dates, values = _daily(processed, blueprint.model)
    horizon = _horizon(blueprint.model, cfg)
    return ModelOutcome({}, _forecast_rows(forecast_from(saved, dates, values, horizon)))


def _forecast_headline(blueprint: Blueprint, summary: dict[str, Any]) -> str:
    value = blueprint.model.value if blueprint.model else "value"
    s = summary["scores"][summary["model"]]
    total = summary["totals"].get("next_30_days")
    lead = f"{value} forecast ({summary['model']}): MASE {s['mase']:.2f} in the backtest"
    return lead + (f"; the next 30 days total {total:,.0f}" if total is not None else "")


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


def _fit_price(processed: Any, blueprint: Blueprint, cfg: ModelConfig) -> ModelOutcome:
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


def _apply_price(
    saved: dict[str, Any], processed: pl.LazyFrame, blueprint: Blueprint, cfg: ModelConfig
) -> ModelOutcome:
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


def _price_headline(blueprint: Blueprint, summary: dict[str, Any]) -> str:
    n = len(summary["products"])
    return f"price model: an elasticity for {summary['identifiable']} of {n} products"


#: Every model task, by the name a blueprint's :class:`~tracer_kit.blueprints.ModelSpec` gives.
MODEL_TASKS: dict[str, ModelTask] = {
    "churn": ModelTask(
        "calibrated_classifier",
        _fit_classification,
        _apply_classification,
        _classification_headline,
        _classification_chart,
    ),
    "classification": ModelTask(
        "calibrated_classifier",
        _fit_classification,
        _apply_classification,
        _classification_headline,
        _classification_chart,
    ),
    "regression": ModelTask(
        "regression",
        _fit_regression,
        _apply_regression,
        _regression_headline,
        lambda bp, summary, _: regression_chart(summary, target=summary.get("target") or "target"),
    ),
    "forecast": ModelTask(
        "backtested_forecast",
        _fit_forecast,
        _apply_forecast,
        _forecast_headline,
        lambda bp, summary, rows: forecast_chart(
            summary, rows, value=bp.model.value if bp.model and bp.model.value else "value"
        ),
    ),
    "elasticity": ModelTask(
        "constant_elasticity",
        _fit_price,
        _apply_price,
        _price_headline,
        lambda bp, summary, _: elasticity_chart(summary.get("products") or []),
    ),
}


def register_model_task(name: str, task: ModelTask, *, replace: bool = False) -> ModelTask:
    """Add a model task a blueprint can name in its ``ModelSpec``.

    Raises
    ------
    BlueprintError
        When a task of that name exists and ``replace`` is false.
    """
    if name in MODEL_TASKS and not replace:
        raise BlueprintError(
            f"a model task named {name!r} is already registered; pass replace=True"
        )
    MODEL_TASKS[name] = task
    return task


def model_task(blueprint: Blueprint) -> ModelTask | None:
    """The blueprint's model task (None: the blueprint has no model).

    Raises
    ------
    BlueprintError
        When the blueprint names a task no one registered.
    """
    if blueprint.model is None:
        return None
    task = MODEL_TASKS.get(blueprint.model.task)
    if task is None:
        known = ", ".join(sorted(MODEL_TASKS))
        msg = f"blueprint {blueprint.name!r}: unknown model task {blueprint.model.task!r}; known: {known}"
        raise BlueprintError(msg)
    return task


def fit_model(
    processed: pl.LazyFrame, blueprint: Blueprint, config: ModelConfig | None = None
) -> ModelOutcome | None:
    """The blueprint's model fitted on its processed rows, or None when it has no model."""
    task = model_task(blueprint)
    if task is None:
        return None
    return replace(task.fit(processed, blueprint, config or ModelConfig()), processed=processed)


def apply_model(
    saved: dict[str, Any],
    processed: pl.LazyFrame,
    blueprint: Blueprint,
    config: ModelConfig | None = None,
) -> ModelOutcome:
    """Predictions of a saved model on new processed rows (no refitting)."""
    task = model_task(blueprint)
    assert task is not None
    outcome = task.apply(saved, processed, blueprint, config or ModelConfig())
    return replace(outcome, processed=processed)


def headline(blueprint: Blueprint, summary: dict[str, Any]) -> str | None:
    """One plain sentence on what the model found (None without a model)."""
    if not summary or summary.get("model") is None:
        return summary.get("why") if summary else None
    if summary["model"] == "saved":
        return (
            f"{summary['rows']} prediction(s) from the saved model of run {summary['trained_by']}"
        )
    task = model_task(blueprint)
    return task.headline(blueprint, summary) if task is not None else None


def model_chart(blueprint: Blueprint, summary: dict[str, Any], predictions: pl.DataFrame) -> Any:
    """The model task's picture of a fitted model (None when it draws none)."""
    task = model_task(blueprint)
    return task.chart(blueprint, summary, predictions) if task is not None else None
