"""A fitted classifier compiled to polars expressions: every row scored without pandas.

scikit-learn scores a batch by copying it to pandas, then running each step of the
pipeline on the copy (imputers, scalers, a spline basis per number, one-hot columns), most
of the time spent outside the model itself (1 M churn rows: 2.9 s, of which the logistic
regression's dot product is 0.06 s). The steps the churn candidates use are plain
arithmetic on their fitted statistics, so here they become polars expressions evaluated on
the batch as it is:

- a number: ``NaN`` and null filled with the imputer's statistic, then ``(x - mean) / scale``;
- its spline basis, when the final model is a logistic regression: the regression's weights
  on one number's basis columns make one cubic spline, evaluated piece by piece (Horner)
  inside the knots and as the basis's straight lines outside (``extrapolation="linear"``);
- a category: the imputer's most frequent value for a null, then each category's one-hot
  row (an unknown category: zeros), or for a logistic regression its weights' sum.

A logistic regression's decision is then one expression; a gradient-boosting model gets
the matrix as a NumPy array. The calibration is the saved model's own. A pipeline with any
other step is not compiled (:func:`compile_classifier` returns None) and scikit-learn
scores it; a compiled scorer checks itself against scikit-learn on its first rows, in
each process, and gives way to it (with a warning) if they differ by more than 1e-9.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

__all__ = ["CompiledClassifier", "compile_classifier", "sklearn_probabilities"]

log = logging.getLogger("tracer_kit")

#: Rows of the first batch a compiled scorer is checked on against scikit-learn.
PROBE_ROWS = 512
#: The largest difference allowed between the compiled and scikit-learn's probabilities.
PROBE_TOLERANCE = 1e-9


def sklearn_probabilities(estimator: Any, inputs: Sequence[str], rows: pl.DataFrame) -> np.ndarray:
    """The positive class's probability per row, as scikit-learn gives it (through pandas)."""
    return estimator.predict_proba(rows.select(inputs).to_pandas())[:, 1]


def _step_name(step: Any) -> str:
    return type(step).__name__


def _number(expr: pl.Expr, steps: Sequence[Any], i: int) -> tuple[pl.Expr, float, float] | None:
    """Number ``i`` of its block imputed, and the shift and scale that standardise it.

    None for a step not compiled here (an imputer, then at most one scaler).
    """
    out = expr.cast(pl.Float64).fill_nan(None)
    shift, scale = 0.0, 1.0
    names = [_step_name(step) for step in steps]
    if names not in (["SimpleImputer"], ["SimpleImputer", "StandardScaler"], ["StandardScaler"]):
        return None
    for step in steps:
        if _step_name(step) == "SimpleImputer":
            if step.strategy not in ("mean", "median", "constant"):
                return None
            if getattr(step, "add_indicator", False) or not np.isfinite(step.statistics_[i]):
                return None
            out = out.fill_null(float(step.statistics_[i]))
        else:
            shift = float(step.mean_[i]) if step.with_mean else 0.0
            scale = float(step.scale_[i]) if step.with_std else 1.0
    return out, shift, scale


def _horner(d: pl.Expr, coefficients: Sequence[float]) -> pl.Expr:
    out: pl.Expr = pl.lit(float(coefficients[0]))
    for c in coefficients[1:]:
        out = out * d + float(c)
    return out


def _spline_sum(z: pl.Expr, spline: Any, weights: np.ndarray) -> pl.Expr:
    """``sum_j weights[j] * basis_j(z)`` of one fitted ``SplineTransformer`` feature (linear extrapolation)."""
    from scipy.interpolate import BSpline, PPoly

    k = spline.k
    t = spline.t
    low, high = float(t[k]), float(t[-k - 1])
    curve = BSpline(t, spline.c @ weights, k)
    lines = max(k, 2)  # (scikit-learn extends degree-1 splines by two bases)
    n = spline.c.shape[1]
    f_low, f_high = spline(low), spline(high)
    d_low, d_high = spline(low, nu=1), spline(high, nu=1)
    below = [(f_low[j], d_low[j], weights[j]) for j in range(lines)]
    above = [(f_high[n - 1 - j], d_high[n - 1 - j], weights[n - 1 - j]) for j in range(lines)]
    below_value = sum(float(w * f) for f, _, w in below)
    below_slope = sum(float(w * s) for _, s, w in below)
    above_value = sum(float(w * f) for f, _, w in above)
    above_slope = sum(float(w * s) for _, s, w in above)
    pieces = PPoly.from_spline(curve)
    chain = pl.when(z < low).then(below_value + (z - low) * below_slope)
    chain = chain.when(z > high).then(above_value + (z - high) * above_slope)
    inside = [
        m
        for m in range(len(pieces.x) - 1)
        if pieces.x[m] >= low and pieces.x[m + 1] <= high and pieces.x[m + 1] > pieces.x[m]
    ]
    for m in inside[:-1]:
        start = float(pieces.x[m])
        chain = chain.when(z < float(pieces.x[m + 1])).then(_horner(z - start, pieces.c[:, m]))
    last = inside[-1]
    return chain.otherwise(_horner(z - float(pieces.x[last]), pieces.c[:, last]))


def _one_hot_rows(imputer: Any, encoder: Any, column: str) -> tuple[Any, list[str], np.ndarray]:
    """The imputer's fill value, the categories known, and each one's one-hot row."""
    known = [str(c) for c in encoder.categories_[0]]
    values: Any = np.array(known, dtype=object).reshape(-1, 1)
    if hasattr(encoder, "feature_names_in_"):  # (fitted on a named frame: given one)
        import pandas as pd

        values = pd.DataFrame({column: pd.Series(known, dtype=object)})
    rows = encoder.transform(values)
    fill = None if imputer is None else imputer.statistics_[0]
    return fill, known, np.asarray(rows, dtype=np.float64)


def _category(column: str, steps: Sequence[Any]) -> tuple[pl.Expr, list[str], np.ndarray] | None:
    """A text column: its imputed values, the categories known and their one-hot rows."""
    names = [_step_name(s) for s in steps]
    if names == ["OneHotEncoder"]:
        imputer, encoder = None, steps[0]
    elif names == ["SimpleImputer", "OneHotEncoder"]:
        imputer, encoder = steps
        if imputer.strategy not in ("most_frequent", "constant"):
            return None
    else:
        return None
    if encoder.drop is not None or encoder.handle_unknown != "ignore":
        return None
    fill, known, rows = _one_hot_rows(imputer, encoder, column)
    value = pl.col(column).cast(pl.String)
    if fill is not None:
        value = value.fill_null(str(fill))
    return value, known, rows


@dataclass
class _Block:
    """One transformer of the ColumnTransformer, compiled: its output columns or its share of a dot product."""

    columns: list[pl.Expr] = field(default_factory=list)  # the matrix columns (no weights)
    #: Standardised numbers, computed once before the terms that read them (a spline's
    #: pieces read its number a dozen times: as one column, the plan stays small).
    prepared: list[pl.Expr] = field(default_factory=list)
    #: Per matrix column, the shift and scale NumPy applies as scikit-learn does (polars
    #: may divide by a constant as a multiplication: a last bit off moves a tree's split).
    standard: list[tuple[float, float]] = field(default_factory=list)
    terms: list[pl.Expr] = field(default_factory=list)  # weighted, for a linear final model


def _steps_of(transformer: Any) -> list[Any]:
    return (
        [s for _, s in transformer.steps]
        if _step_name(transformer) == "Pipeline"
        else [transformer]
    )


def _numbers_block(
    columns: list[str], steps: list[Any], weights: np.ndarray | None
) -> _Block | None:
    spline = steps[-1] if steps and _step_name(steps[-1]) == "SplineTransformer" else None
    plain = steps[:-1] if spline is not None else steps
    block = _Block()
    for i, c in enumerate(columns):
        number = _number(pl.col(c), plain, i)
        if number is None:
            return None
        x, shift, scale = number
        if weights is None:  # the matrix, standardised by NumPy
            if spline is not None:
                return None  # (a spline basis feeds only a linear model here)
            block.columns.append(x)
            block.standard.append((shift, scale))
            continue
        block.prepared.append(((x - shift) / scale).alias(f"__z_{c}"))
        z = pl.col(f"__z_{c}")
        if spline is None:
            block.terms.append(z * float(weights[i]))
            continue
        if spline.extrapolation != "linear" or not spline.include_bias:
            return None
        n = spline.bsplines_[i].c.shape[1]
        block.terms.append(_spline_sum(z, spline.bsplines_[i], weights[i * n : (i + 1) * n]))
    return block


def _text_block(columns: list[str], steps: list[Any], weights: np.ndarray | None) -> _Block | None:
    if len(columns) != 1:
        return None
    found = _category(columns[0], steps)
    if found is None:
        return None
    value, known, rows = found
    block = _Block()
    if weights is not None:
        sums = (rows @ weights).tolist()
        block.terms.append(value.replace_strict(known, sums, default=0.0, return_dtype=pl.Float64))
        return block
    for j in range(rows.shape[1]):
        block.columns.append(
            value.replace_strict(known, rows[:, j].tolist(), default=0.0, return_dtype=pl.Float64)
        )
        block.standard.append((0.0, 1.0))
    return block


def _compile_blocks(ct: Any, weights: np.ndarray | None) -> list[_Block] | None:
    if _step_name(ct) != "ColumnTransformer" or ct.remainder != "drop":
        return None
    blocks = []
    for name, transformer, columns in ct.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        steps = _steps_of(transformer)
        part = ct.output_indices_[name]
        w = None if weights is None else weights[part]
        numeric = all(_step_name(s) != "OneHotEncoder" for s in steps)
        compile_block = _numbers_block if numeric else _text_block
        block = compile_block(list(columns), steps, w)
        if block is None:
            return None
        blocks.append(block)
    return blocks


@dataclass
class CompiledClassifier:
    """A saved classifier's scoring as polars expressions (:mod:`tracer_kit.model.compiled`)."""

    estimator: Any  # the saved model, which scores when the compiled form gives way
    inputs: list[str]
    decision: pl.Expr | None  # a logistic regression's decision function, over ``prepared``
    prepared: list[pl.Expr]
    matrix: list[pl.Expr]  # otherwise the model matrix, for ``final``
    standard: tuple[np.ndarray, np.ndarray] | None  # the matrix columns' shifts and scales
    final: Any
    calibrate: Callable[[np.ndarray], np.ndarray]
    checked: bool = False
    broken: bool = False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["checked"] = False  # (each process checks itself on its first rows)
        return state

    def compiled(self, rows: pl.DataFrame) -> np.ndarray:
        """The positive class's probability per row, from the expressions."""
        if self.decision is not None:
            from scipy.special import expit

            prepared = rows.lazy().with_columns(self.prepared)
            d = prepared.select(self.decision.alias("d")).collect().to_series().to_numpy()
            return self.calibrate(expit(d))
        matrix = rows.select(e.alias(f"m{i}") for i, e in enumerate(self.matrix)).to_numpy()
        assert self.standard is not None
        matrix = np.array(matrix, dtype=np.float64, order="C")
        matrix -= self.standard[0]
        matrix /= self.standard[1]
        return self.calibrate(self.final.predict_proba(matrix)[:, 1])

    def reference(self, rows: pl.DataFrame) -> np.ndarray:
        """scikit-learn's probabilities (through pandas)."""
        return sklearn_probabilities(self.estimator, self.inputs, rows)

    def __call__(self, rows: pl.DataFrame) -> np.ndarray:
        """The probabilities: compiled, checked against scikit-learn on the first rows."""
        if self.broken:
            return self.reference(rows)
        p = self.compiled(rows)
        if not self.checked and rows.height:
            self.checked = True
            probe = rows.head(PROBE_ROWS)
            gap = float(np.max(np.abs(p[: probe.height] - self.reference(probe))))
            if not gap <= PROBE_TOLERANCE:
                log.warning(
                    "compiled scoring differs from scikit-learn's by %.3g: scikit-learn scores",
                    gap,
                )
                self.broken = True
                return self.reference(rows)
        return p


def compile_classifier(estimator: Any, inputs: Sequence[str]) -> CompiledClassifier | None:
    """``estimator`` (a saved churn model) as polars expressions, or None when a step is not compiled here."""
    pipeline, calibrate = estimator, _identity
    if type(estimator).__name__ == "CalibratedModel":
        pipeline, calibrate = estimator.estimator, estimator.calibrate
    if _step_name(pipeline) != "Pipeline" or len(pipeline.steps) != 2:
        return None
    ct, final = pipeline.steps[0][1], pipeline.steps[1][1]
    if list(getattr(final, "classes_", [])) != [0, 1]:
        return None
    linear = _step_name(final) == "LogisticRegression" and final.coef_.shape[0] == 1
    if linear:
        blocks = _compile_blocks(ct, final.coef_[0])
        if blocks is None:
            return None
        decision: pl.Expr = pl.lit(float(final.intercept_[0]))
        for term in (t for b in blocks for t in b.terms):  # (a fixed order of additions:
            decision = decision + term  # sum_horizontal's may vary, and a bit with it)
        prepared = [e for b in blocks for e in b.prepared]
        return CompiledClassifier(
            estimator, list(inputs), decision, prepared, [], None, None, calibrate
        )
    if _step_name(final) != "HistGradientBoostingClassifier":
        return None
    blocks = _compile_blocks(ct, None)
    if blocks is None:
        return None
    matrix = [c for b in blocks for c in b.columns]
    shifts, scales = zip(*[pair for b in blocks for pair in b.standard], strict=True)
    standard = (np.array(shifts), np.array(scales))
    return CompiledClassifier(estimator, list(inputs), None, [], matrix, standard, final, calibrate)


def _identity(p: np.ndarray) -> np.ndarray:
    return p
