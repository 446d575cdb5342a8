"""The generic regression model: a number predicted per row, evaluated on held-out rows.

For a blueprint whose model is ``ModelSpec("regression", target=...)``:

1. a seeded split of the labelled rows (default 80/20);
2. candidates, each a scikit-learn pipeline whose preprocessing (median imputation and
   scaling of numbers, one-hot categories) is fitted on the training part only: ridge
   regression (its penalty chosen by cross-validation) and ``HistGradientBoostingRegressor``,
   chosen by cross-validated RMSE on the training part;
3. on the held-out part: MAE, RMSE and R² beside the trivial baseline (every row at the
   training mean), permutation importance of the inputs, and the 10th and 90th percentiles
   of the held-out errors, which give every prediction its 80% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tracer_kit.errors import ConfigError
from tracer_kit.model.churn import (
    chosen_candidates,
    input_preprocessor,
    permutation_drivers,
    split_inputs,
)

__all__ = ["MIN_ROWS", "RegressionModel", "fit_regression", "regression_metrics"]

#: Fewest rows with a target for a regression model (a split and three folds need them).
MIN_ROWS = 30
FOLDS = 3


@dataclass
class RegressionModel:
    """A fitted regression model and how it did on rows it never saw."""

    estimator: Any
    chosen: str
    inputs: list[str]
    cv_rmse: dict[str, float]
    metrics: dict[str, float]
    baseline: dict[str, float]
    importance: list[dict[str, Any]]
    interval: tuple[
        float, float
    ]  # 10th and 90th percentile of held-out errors (actual - predicted)
    held_out: dict[str, list[float]] = field(default_factory=dict)
    rows_train: int = 0
    rows_test: int = 0


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² of predictions ``p`` of ``y``."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "mae": round(float(mean_absolute_error(y, p)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(y, p))), 6),
        "r2": round(float(r2_score(y, p)), 6),
    }


def _candidates(numeric: list[str], text: list[str], seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    return {
        "ridge": make_pipeline(
            input_preprocessor(numeric, text), RidgeCV(alphas=np.logspace(-3, 3, 13))
        ),
        "gradient_boosting": make_pipeline(
            input_preprocessor(numeric, text),
            HistGradientBoostingRegressor(
                max_iter=200, learning_rate=0.1, early_stopping=True, random_state=seed
            ),
        ),
    }


def _choose(
    x: Any,
    y: np.ndarray,
    numeric: list[str],
    text: list[str],
    seed: int,
    names: Sequence[str] | None,
) -> tuple[str, Any, dict[str, float]]:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_score

    candidates = chosen_candidates(_candidates(numeric, text, seed), names, "regression")
    folds = KFold(FOLDS, shuffle=True, random_state=seed)
    scores = {
        name: float(
            -cross_val_score(m, x, y, cv=folds, scoring="neg_root_mean_squared_error").mean()
        )
        for name, m in candidates.items()
    }
    chosen = min(scores, key=scores.__getitem__)
    return chosen, clone(candidates[chosen]).fit(x, y), {k: round(v, 6) for k, v in scores.items()}


def fit_regression(
    frame: pl.DataFrame,
    inputs: Sequence[str],
    target: str,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    candidates: Sequence[str] | None = None,
) -> RegressionModel:
    """Fit, choose and evaluate a regression of ``target`` on ``inputs`` (rows with a target).

    Raises
    ------
    ConfigError
        With fewer than :data:`MIN_ROWS` rows with a target, or no usable input.
    """
    from sklearn.model_selection import train_test_split

    rows = frame.filter(pl.col(target).is_not_null() & pl.col(target).cast(pl.Float64).is_finite())
    if rows.height < MIN_ROWS:
        msg = f"{target!r} needs at least {MIN_ROWS} rows with a value to fit and evaluate a model"
        raise ConfigError(msg, column=target)
    numeric, text = split_inputs(rows, inputs)
    if not numeric and not text:
        raise ConfigError(f"no input to predict {target!r} from: every input is empty or text")
    y = rows.get_column(target).cast(pl.Float64).to_numpy()
    x = rows.select(numeric + text).to_pandas()
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed)
    chosen, model, scores = _choose(x.iloc[train], y[train], numeric, text, seed, candidates)
    p = model.predict(x.iloc[test])
    errors = y[test] - p
    shown = np.argsort(test)[:500]  # the held-out rows the chart draws, in file order
    return RegressionModel(
        estimator=model,
        chosen=chosen,
        inputs=numeric + text,
        cv_rmse=scores,
        metrics=regression_metrics(y[test], p),
        baseline=regression_metrics(y[test], np.full(len(test), y[train].mean())),
        importance=permutation_drivers(
            model,
            x.iloc[test],
            y[test],
            seed,
            scoring="neg_root_mean_squared_error",
            name="rmse_increase",
        ),
        interval=(float(np.quantile(errors, 0.1)), float(np.quantile(errors, 0.9))),
        held_out={"actual": y[test][shown].tolist(), "predicted": p[shown].tolist()},
        rows_train=len(train),
        rows_test=len(test),
    )
