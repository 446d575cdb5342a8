"""The fitted preprocessing as a scikit-learn transformer, built from its :class:`~tracer_kit.recipe.Recipe`.

A run fits its preprocessing with polars (:mod:`tracer_kit.recipe`) and needs no
scikit-learn for it. :class:`Preprocessor` is the same recipe as a scikit-learn
``ColumnTransformer`` (impute, cap, scale; impute, encode), for those who want one:
``tk.load_preprocessor(run_id)`` returns it, ``.transform(new_frame)`` gives the run's
matrix exactly, and ``.save(path)`` writes it with skops (a run with a saved model writes
``<run_id>.preprocessor.skops`` itself). Files saved by earlier releases still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
    TargetEncoder,
)

from tracer_kit.blueprints import Blueprint
from tracer_kit.config import PreprocessConfig
from tracer_kit.errors import TracerError
from tracer_kit.recipe import NumberStep, Recipe, TextStep, fit_recipe, read_recipe, recipe_for
from tracer_kit.skops_files import dump_skops, load_skops

__all__ = [
    "OutlierCapper",
    "Preprocessor",
    "fit_preprocessor",
    "read_preprocessor",
    "save_preprocessor",
]

_SCALERS = {"robust": RobustScaler, "standard": StandardScaler, "minmax": MinMaxScaler}
_ENCODERS = {"onehot": OneHotEncoder, "label": OrdinalEncoder, "target": TargetEncoder}


class OutlierCapper(TransformerMixin, BaseEstimator):
    """Cap (never remove) values outside fitted bounds: ``iqr`` (Q1 - 1.5 IQR, Q3 + 1.5 IQR) or ``zscore`` (|z| > 3).

    Parameters
    ----------
    method
        ``"iqr"``, ``"zscore"`` or ``"none"``.
    """

    def __init__(self, method: str = "iqr") -> None:
        self.method = method

    def fit(self, X: Any, y: Any = None) -> OutlierCapper:
        """Learn per-column bounds, ignoring NaN."""
        if self.method not in ("iqr", "zscore", "none"):
            msg = f"method={self.method!r} should be 'iqr', 'zscore' or 'none'"
            raise ValueError(msg)
        arr = _as_float(X)
        self.n_features_in_ = arr.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        if self.method == "iqr":
            q1, q3 = np.nanpercentile(arr, 25, axis=0), np.nanpercentile(arr, 75, axis=0)
            self.lower_, self.upper_ = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        elif self.method == "zscore":
            mean, std = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0, ddof=1)
            self.lower_, self.upper_ = mean - 3 * std, mean + 3 * std
        else:
            self.lower_ = np.full(arr.shape[1], -np.inf)
            self.upper_ = np.full(arr.shape[1], np.inf)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Clip each column to its bounds."""
        return np.clip(_as_float(X), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names, unchanged."""
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        return getattr(
            self,
            "feature_names_in_",
            np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object),
        )


def _as_float(X: Any) -> np.ndarray:
    if isinstance(X, pl.DataFrame):
        return X.cast(pl.Float64).to_numpy()
    return np.asarray(X, dtype=float)


class Preprocessor(TransformerMixin, BaseEstimator):
    """The fitted recipe as scikit-learn transformers: which columns, how they are imputed,
    capped, encoded and scaled.

    ``fit`` fits a :class:`~tracer_kit.recipe.Recipe` with polars and builds the transformers
    from it; ``transform`` takes a frame shaped like the processed table and returns the
    polars matrix (with ``source_row`` first when the input has it).
    """  # noqa: D205

    def __init__(
        self, blueprint: str = "", config: dict[str, str] | None = None, target: str | None = None
    ) -> None:
        self.blueprint = blueprint
        self.config = config
        self.target = target

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Preprocessor:
        """The scikit-learn form of ``recipe``: ``transform`` gives its matrix bit for bit."""
        return cls(recipe.blueprint, recipe.config, recipe.target)._adopt(recipe)

    def fit(self, frame: pl.DataFrame, y: Any = None) -> Preprocessor:
        """Choose columns and strategies from the data and fit them (:func:`~tracer_kit.recipe.fit_recipe`)."""
        cfg = PreprocessConfig(**(self.config or {}))
        return self._adopt(fit_recipe(frame, self.blueprint, cfg, self.target))

    def _adopt(self, recipe: Recipe) -> Preprocessor:
        self.numeric_ = recipe.numeric
        self.categorical_ = recipe.categorical
        self.dropped_ = list(recipe.dropped)
        self.drop_missing_ = recipe.drop_missing
        self.strategies_ = {s.column: s.strategy for s in recipe.numbers}
        self.encodings_ = {s.column: s.encoding for s in recipe.texts}
        self.transformer_ = _transformer(recipe)
        return self

    def recipe(self) -> Recipe:
        """The fitted statistics as a :class:`~tracer_kit.recipe.Recipe` (also of an older saved file)."""
        config = self.config or PreprocessConfig().model_dump()
        numbers: list[NumberStep] = []
        texts: list[TextStep] = []
        for name, pipe, cols in self.transformer_.transformers_:
            if name.startswith("num_"):
                numbers += _number_steps(name.removeprefix("num_"), pipe, cols)
            elif name.startswith("cat_"):
                texts.append(_text_step(cols[0], pipe))
        return Recipe(
            self.blueprint,
            config,
            self.target,
            tuple(numbers),
            tuple(texts),
            tuple(self.dropped_),
            self.drop_missing_,
        )

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The model-ready matrix for ``frame``: float32 values, uint8 one-hot columns."""
        recipe = self.recipe()
        lf = frame.lazy()
        if self.drop_missing_:
            lf = lf.drop_nulls(self.numeric_ + self.categorical_)
        rows = lf.collect()
        inputs = rows.select(
            pl.col(c).cast(pl.Int8) if rows.schema[c] == pl.Boolean else pl.col(c)
            for c in self.numeric_ + self.categorical_
        )
        out = self.transformer_.transform(inputs)
        if not isinstance(out, pl.DataFrame):  # (steps hand numpy arrays on: one conversion)
            names = list(self.transformer_.get_feature_names_out())
            out = pl.DataFrame(np.asarray(out, dtype=np.float64), schema=names, orient="row")
        out = out.cast(recipe.dtypes())  # type: ignore[arg-type]
        if "source_row" in rows.columns:
            out = out.insert_column(0, rows["source_row"])
        return out

    def expressions(self) -> list[pl.Expr]:
        """The fitted transform as polars expressions (matrix columns only)."""
        return self.recipe().expressions()

    def save(self, path: str | Path) -> Path:
        """Write this fitted preprocessor to ``path`` (:func:`save_preprocessor`)."""
        return save_preprocessor(self, path)

    def write_matrix(self, frame: Any, path: str | Path, *, keys: Any = ()) -> int:
        """Write the matrix of ``frame`` to ``path`` (:meth:`Recipe.write_matrix`); returns rows written."""
        return self.recipe().write_matrix(frame, path, keys=keys)

    def describe(self) -> dict[str, Any]:
        """The choices made: column lists, imputation per column, encoding per column."""
        return self.recipe().describe()


def _bound(value: float | None, unbounded: float) -> float:
    return unbounded if value is None else value


def _adopt_scaler(scaler: Any, steps: list[NumberStep]) -> Any:
    """Give a fitted scaler the recipe's offsets and factors (the attributes its ``transform`` reads)."""
    offsets = np.array([s.offset for s in steps])
    factors = np.array([s.factor for s in steps])
    if isinstance(scaler, StandardScaler):
        scaler.mean_, scaler.scale_, scaler.var_ = offsets, factors, factors**2
    elif isinstance(scaler, RobustScaler):
        scaler.center_, scaler.scale_ = offsets, factors
    else:
        scaler.min_, scaler.scale_ = offsets, factors
        scaler.data_min_ = -offsets / factors
        scaler.data_range_ = 1.0 / factors
        scaler.data_max_ = scaler.data_min_ + scaler.data_range_
    return scaler


def _adopt_text(pipe: Pipeline, step: TextStep) -> None:
    """Give a fitted impute-encode pipeline the recipe's fill, levels and target statistics."""
    pipe.named_steps["impute"].statistics_ = np.array([step.fill], dtype=object)
    encoder = pipe.named_steps["encode"]
    encoder.categories_ = [np.array(step.categories, dtype=object)]
    if step.encoding == "target":
        encoder.encodings_ = [np.array(e) for e in step.encodings]
        means = np.array(step.defaults)
        encoder.target_mean_ = means if step.target_type == "multiclass" else float(means[0])


def _number_pipeline(recipe: Recipe, strategy: str) -> tuple[str, Pipeline, list[str]]:
    steps = [s for s in recipe.numbers if s.strategy == strategy]
    imputer = SimpleImputer(strategy=strategy, keep_empty_features=True)
    capper = OutlierCapper(recipe.config.get("outliers", "iqr"))
    parts: list[tuple[str, Any]] = [("impute", imputer), ("cap", capper)]
    scaling = recipe.config.get("scaling", "none")
    if scaling != "none":
        parts.append(("scale", _SCALERS[scaling]()))
    return (f"num_{strategy}", Pipeline(parts), [s.column for s in steps])


def _text_pipeline(step: TextStep) -> tuple[str, Pipeline, list[str]]:
    encoder = {
        "onehot": lambda: OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        "label": lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        "target": lambda: TargetEncoder(),
    }[step.encoding]()
    imputer = SimpleImputer(strategy="most_frequent", missing_values=None)
    return (
        f"cat_{step.column}",
        Pipeline([("impute", imputer), ("encode", encoder)]),
        [step.column],
    )


def _scaffold(recipe: Recipe) -> tuple[pl.DataFrame, Any]:
    """Rows (and a target) on which the transformers fit to the recipe's shape: every level
    of every text column, the target's classes, two or more rows.
    """  # noqa: D205
    classes = next((s.classes for s in recipe.texts if s.classes), ())
    n = max([2, len(classes), *(len(s.categories) for s in recipe.texts)])
    columns: dict[str, Any] = {c: [float(i % 2) for i in range(n)] for c in recipe.numeric}
    for s in recipe.texts:
        columns[s.column] = [s.categories[i % len(s.categories)] for i in range(n)]
    target_type = next((s.target_type for s in recipe.texts if s.target_type), None)
    y = None
    if target_type == "continuous":
        y = np.arange(n) + 0.5
    elif target_type is not None:
        y = np.array([classes[i % len(classes)] for i in range(n)] if classes else [0, 1] * n)[:n]
    return pl.DataFrame(
        columns,
        schema={
            **dict.fromkeys(recipe.numeric, pl.Float64),
            **{s.column: pl.String for s in recipe.texts},
        },
    ), y


def _transformer(recipe: Recipe) -> ColumnTransformer:
    """A ``ColumnTransformer`` fitted to the recipe's shape, then given its statistics."""
    strategies = list(dict.fromkeys(s.strategy for s in recipe.numbers))
    parts = [_number_pipeline(recipe, k) for k in strategies]
    parts += [_text_pipeline(s) for s in recipe.texts]
    transformer = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    rows, y = _scaffold(recipe)
    transformer.fit(rows, y)
    fitted = dict((name, pipe) for name, pipe, _ in transformer.transformers_)
    for k in strategies:
        steps = [s for s in recipe.numbers if s.strategy == k]
        pipe = fitted[f"num_{k}"]
        pipe.named_steps["impute"].statistics_ = np.array([s.fill for s in steps])
        cap = pipe.named_steps["cap"]
        cap.lower_ = np.array([_bound(s.lower, -np.inf) for s in steps])
        cap.upper_ = np.array([_bound(s.upper, np.inf) for s in steps])
        if "scale" in pipe.named_steps:
            pipe.steps[-1] = ("scale", _adopt_scaler(pipe.named_steps["scale"], steps))
    for s in recipe.texts:
        _adopt_text(fitted[f"cat_{s.column}"], s)
    return transformer


def _offset_factor(scaler: Any, i: int) -> tuple[str, float, float]:
    """A fitted scaler's column ``i`` as ``(scaling, offset, factor)``."""
    if isinstance(scaler, StandardScaler):
        offset = float(scaler.mean_[i]) if scaler.with_mean else 0.0
        return "standard", offset, float(scaler.scale_[i]) if scaler.with_std else 1.0
    if isinstance(scaler, RobustScaler):
        offset = float(scaler.center_[i]) if scaler.with_centering else 0.0
        return "robust", offset, float(scaler.scale_[i]) if scaler.with_scaling else 1.0
    return "minmax", float(scaler.min_[i]), float(scaler.scale_[i])


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) or np.isnan(value) else None


def _number_steps(strategy: str, pipe: Pipeline, cols: list[str]) -> list[NumberStep]:
    """The recipe's steps of one fitted impute-cap-scale pipeline."""
    steps = pipe.named_steps
    out = []
    for i, c in enumerate(cols):
        scaling, offset, factor = "none", 0.0, 1.0
        if "scale" in steps:
            scaling, offset, factor = _offset_factor(steps["scale"], i)
        lower, upper = steps["cap"].lower_[i], steps["cap"].upper_[i]
        fill = float(steps["impute"].statistics_[i])
        out.append(
            NumberStep(c, strategy, fill, _finite(lower), _finite(upper), scaling, offset, factor)
        )
    return out


def _text_step(column: str, pipe: Pipeline) -> TextStep:
    """The recipe's step of one fitted impute-encode pipeline."""
    encoder = pipe.named_steps["encode"]
    kind = next(k for k, t in _ENCODERS.items() if isinstance(encoder, t))
    fill = str(pipe.named_steps["impute"].statistics_[0])
    levels = tuple(str(v) for v in encoder.categories_[0])
    if kind != "target":
        return TextStep(column, fill, kind, levels)
    means = np.atleast_1d(encoder.target_mean_)
    return TextStep(
        column,
        fill,
        kind,
        levels,
        target_type=encoder.target_type_,
        classes=tuple(encoder.classes_) if encoder.target_type_ == "multiclass" else (),
        encodings=tuple(tuple(float(v) for v in e) for e in encoder.encodings_),
        defaults=tuple(float(m) for m in means),
    )


def fit_preprocessor(frame: Any, blueprint: Blueprint, config: PreprocessConfig) -> Preprocessor:
    """Fit a blueprint's :class:`Preprocessor` on at most 1,000,000 of its rows (:func:`~tracer_kit.recipe.recipe_for`)."""
    return Preprocessor.from_recipe(recipe_for(frame, blueprint, config))


def save_preprocessor(prep: Preprocessor, path: str | Path) -> Path:
    """Write the fitted preprocessor with skops (no pickle), its recipe as JSON beside it."""
    path = dump_skops(prep, path)
    prep.recipe().save(path.with_suffix(".json"))
    return path


def read_preprocessor(path: str | Path) -> Preprocessor:
    """Load a preprocessor: a skops file tracer-kit wrote (:func:`load_skops`), or a saved recipe (``.json``)."""
    if Path(path).suffix == ".json":
        recipe = read_recipe(path)
        if recipe is None:
            raise TracerError(f"{path}: not a saved preprocessing recipe")
        return Preprocessor.from_recipe(recipe)
    return load_skops(path, "a preprocessor")
