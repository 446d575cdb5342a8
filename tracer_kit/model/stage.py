"""The model stage of a run: each blueprint's model, found in one registry, fitted on the processed rows.

A blueprint with an entry in :data:`MODELS` gets a model when its processed rows allow one
(customer_churn: a ``churned`` label on enough rows). The stage returns predictions (one row
per prediction unit: ``prediction``, ``confidence`` in [0, 1]) and a summary for the run's
params and the report; without what the model needs it says why instead, and no heuristic
score is presented as a prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint
from tracer_kit.model.churn import fit_churn, label_values

__all__ = ["MODELS", "ModelOutcome", "fit_model"]


@dataclass
class ModelOutcome:
    """What the model stage produced: predictions and a summary, or why there is no model."""

    summary: dict[str, Any]
    predictions: pl.DataFrame | None = None
    model: Any = None
    notes: list[str] = field(default_factory=list)


#: Minimum labelled rows of each class for a churn model.
MIN_PER_CLASS = 20


def _churn(processed: pl.DataFrame, blueprint: Blueprint, seed: int) -> ModelOutcome:
    label = processed.select(label_values(pl.col("churned")))
    counts = label.to_series().value_counts()
    per_class = dict(counts.iter_rows())
    if min(per_class.get(0, 0), per_class.get(1, 0)) < MIN_PER_CLASS:
        why = (
            "no churn model: add a 'churned' column (yes/no, true/false, 1/0) with at least "
            f"{MIN_PER_CLASS} churned and {MIN_PER_CLASS} retained customers"
        )
        return ModelOutcome({"model": None, "why": why}, notes=[why])
    inputs = [f for f in blueprint.feature_names if f != "value_tier"] + ["plan_type"]
    m = fit_churn(processed, inputs, seed=seed)
    p = m.predict(processed)
    predictions = processed.select("customer_id").with_columns(
        prediction=pl.Series(p, dtype=pl.Float64),
        confidence=pl.Series(abs(2 * p - 1), dtype=pl.Float64),
    )
    notes = [
        f"{name} left out of the churn model: alone it reaches AUC {auc} (a leak?)"
        for name, auc in m.left_out.items()
    ]
    summary = {
        "model": m.chosen,
        "inputs": m.inputs,
        "left_out": m.left_out,
        "cv_log_loss": m.cv_log_loss,
        "metrics": m.metrics,
        "baseline": m.baseline,
        "importance": m.importance,
        "rows_train": m.rows_train,
        "rows_test": m.rows_test,
        "roc": m.roc,
        "calibration": m.calibration,
    }
    return ModelOutcome(summary, predictions, m.estimator, notes)


#: Each blueprint's model stage, by blueprint name.
MODELS: dict[str, Callable[[pl.DataFrame, Blueprint, int], ModelOutcome]] = {
    "customer_churn": _churn,
}


def fit_model(
    processed: pl.DataFrame, blueprint: Blueprint, *, seed: int = 0
) -> ModelOutcome | None:
    """The blueprint's model on its processed rows, or None when it has no model stage."""
    stage = MODELS.get(blueprint.name)
    return None if stage is None else stage(processed, blueprint, seed)
