"""The fitted preprocessing recipe: statistics fitted with polars, applied as polars expressions.

A :class:`Recipe` says which columns enter the model-ready matrix and how each is imputed,
capped, scaled or encoded, with the numbers fitted on the run's rows. It is plain data
(saved as ``<run_id>.preprocessor.json``), so a run needs no scikit-learn to build, write
or reload its matrix. The statistics follow scikit-learn's definitions (``SimpleImputer``,
``RobustScaler``, ``StandardScaler``, ``MinMaxScaler``, ``OneHotEncoder``,
``OrdinalEncoder``), and the expressions apply them with the same float64 operations in the
same order as their ``transform``; :class:`tracer_kit.preprocess.Preprocessor` is the
scikit-learn object built from a recipe, for those who want one. Target encoding alone is
fitted by scikit-learn's ``TargetEncoder`` (imported only then).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.blueprints import Blueprint
from tracer_kit.config import PreprocessConfig
from tracer_kit.engine import count_rows, fit_rows, write_rows
from tracer_kit.errors import ConfigError, EmptyMatrixError, TracerError
from tracer_kit.lazy import lazy_module
from tracer_kit.settings import settings

__all__ = [
    "NUMBER_STATISTICS",
    "ONEHOT_MAX_LEVELS",
    "RECIPE_FORMAT",
    "SKEW_LIMIT",
    "NumberStep",
    "Recipe",
    "TextStep",
    "fit_recipe",
    "fit_sample",
    "read_recipe",
    "recipe_for",
    "recipe_sample",
]

_sklearn_preprocessing = lazy_module("sklearn.preprocessing")

ONEHOT_MAX_LEVELS = 10
SKEW_LIMIT = 1.0
#: The ``format`` a saved recipe carries; a file without it is an older run's description.
RECIPE_FORMAT = "tracer-kit recipe 1"
#: Imputation strategies by their ``missing`` option (``auto`` picks mean or median by skew).
NUMBER_STATISTICS = {"mean": "mean", "median": "median", "mode": "most_frequent"}
_EPS = 2.220446049250313e-16  # float64 machine epsilon, as scikit-learn's zero-scale guard uses


@dataclass(frozen=True)
class NumberStep:
    """One numeric column: fill missing values, cap to ``[lower, upper]``, then scale.

    ``scaling`` says how ``offset`` and ``factor`` apply, as scikit-learn's scalers do:
    ``standard`` and ``robust`` give ``(x - offset) / factor``, ``minmax`` ``x * factor +
    offset``, ``none`` leaves ``x``. A bound of None is no bound.
    """

    column: str
    strategy: str
    fill: float
    lower: float | None
    upper: float | None
    scaling: str = "none"
    offset: float = 0.0
    factor: float = 1.0

    def expression(self) -> pl.Expr:
        """The column's matrix values (float32)."""
        x = pl.col(self.column).cast(pl.Float64).fill_nan(None).fill_null(self.fill)
        if self.lower is not None or self.upper is not None:
            x = x.clip(self.lower, self.upper)
        if self.scaling in ("standard", "robust"):
            x = (x - self.offset) / self.factor
        elif self.scaling == "minmax":
            x = x * self.factor + self.offset
        return x.cast(pl.Float32).alias(self.column)


@dataclass(frozen=True)
class TextStep:
    """One text column: fill missing values with ``fill``, then encode.

    ``onehot`` gives one 0/1 column per level in ``categories``; ``label`` the level's
    position (-1 for an unseen level); ``target`` the level's fitted target statistic
    (``encodings``, one list per output column, ``defaults`` for an unseen level).
    """

    column: str
    fill: str
    encoding: str
    categories: tuple[str, ...]
    target_type: str | None = None
    classes: tuple[Any, ...] = ()
    encodings: tuple[tuple[float, ...], ...] = ()
    defaults: tuple[float, ...] = ()

    def names(self) -> list[str]:
        """The matrix columns this step writes."""
        if self.encoding == "onehot":
            return [f"{self.column}_{v}" for v in self.categories]
        if self.encoding == "target" and self.target_type == "multiclass":
            return [f"{self.column}_{c}" for c in self.classes]
        return [self.column]

    def expressions(self) -> list[pl.Expr]:
        """The step's matrix columns: uint8 for one-hot, float32 otherwise."""
        x = pl.col(self.column).fill_null(pl.lit(self.fill, dtype=pl.String))
        levels = list(self.categories)
        if self.encoding == "onehot":
            return [
                (x == v).cast(pl.UInt8).alias(n) for v, n in zip(levels, self.names(), strict=True)
            ]
        if self.encoding == "label":
            codes = x.replace_strict(
                levels, list(range(len(levels))), default=-1, return_dtype=pl.Float64
            )
            return [codes.cast(pl.Float32).alias(self.column)]
        return [
            x.replace_strict(levels, list(values), default=d, return_dtype=pl.Float64)
            .cast(pl.Float32)
            .alias(n)
            for values, d, n in zip(self.encodings, self.defaults, self.names(), strict=True)
        ]


@dataclass(frozen=True)
class Recipe:
    """A fitted preprocessing recipe (:func:`fit_recipe`): plain data, saved as JSON."""

    blueprint: str
    config: dict[str, str]
    target: str | None
    numbers: tuple[NumberStep, ...]
    texts: tuple[TextStep, ...]
    dropped: tuple[str, ...] = ()
    drop_missing: bool = False
    format: str = field(default=RECIPE_FORMAT)

    @property
    def numeric(self) -> list[str]:
        """The numeric input columns, in matrix order."""
        return [s.column for s in self.numbers]

    @property
    def categorical(self) -> list[str]:
        """The text input columns, in matrix order."""
        return [s.column for s in self.texts]

    def names(self) -> list[str]:
        """The matrix columns, in order."""
        return self.numeric + [n for s in self.texts for n in s.names()]

    def dtypes(self) -> dict[str, pl.DataType]:
        """Each matrix column's type: uint8 for one-hot levels, float32 for everything else."""
        out: dict[str, pl.DataType] = dict.fromkeys(self.numeric, pl.Float32())
        for s in self.texts:
            kind = pl.UInt8() if s.encoding == "onehot" else pl.Float32()
            out.update(dict.fromkeys(s.names(), kind))
        return out

    def expressions(self) -> list[pl.Expr]:
        """The matrix columns as polars expressions over the processed rows."""
        return [s.expression() for s in self.numbers] + [
            e for s in self.texts for e in s.expressions()
        ]

    def transform(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
        """The model-ready matrix of ``frame`` (``source_row`` first when it has one)."""
        return self.matrix_plan(frame).collect()

    def matrix_plan(self, frame: Any, *, keys: Sequence[str] = ()) -> Any:
        """The matrix of ``frame`` as a plan of its engine (nothing runs): ``source_row`` and
        ``keys`` first when ``frame`` has them, then :meth:`expressions`.
        """  # noqa: D205
        lf = frame.lazy()
        if self.drop_missing:
            lf = lf.drop_nulls(self.numeric + self.categorical)
        first = [c for c in ("source_row", *keys) if c in lf.collect_schema().names()]
        return lf.select(*first, *self.expressions())

    def write_matrix(self, frame: Any, path: str | Path, *, keys: Sequence[str] = ()) -> int:
        """Write the matrix of ``frame`` to ``path`` (zstd Parquet, streamed); returns rows.

        ``keys`` are columns kept beside ``source_row`` to join back by (an aggregated row,
        one per date, may have no source row). On Spark (``frame`` a
        :class:`~tracer_kit.spark.PartitionFrame`) the executors write part files in ``path``.
        """
        return write_rows(self.matrix_plan(frame, keys=keys), Path(path))

    def describe(self) -> dict[str, Any]:
        """The choices made: column lists, imputation per column, encoding per column."""
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "dropped": list(self.dropped),
            "imputation": {s.column: s.strategy for s in self.numbers},
            "encoding": {s.column: s.encoding for s in self.texts},
            "config": self.config,
        }

    def save(self, path: str | Path) -> Path:
        """Write the recipe (and its description) as JSON; floats keep every bit."""
        path = Path(path)
        body = {**self.describe(), "recipe": asdict(self)}
        path.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """The recipe :meth:`save` wrote (its ``recipe`` entry)."""
        numbers = tuple(NumberStep(**s) for s in data["numbers"])
        texts = tuple(
            TextStep(
                **{
                    **s,
                    "categories": tuple(s["categories"]),
                    "classes": tuple(s["classes"]),
                    "encodings": tuple(tuple(v) for v in s["encodings"]),
                    "defaults": tuple(s["defaults"]),
                }
            )
            for s in data["texts"]
        )
        rest = {k: v for k, v in data.items() if k not in ("numbers", "texts", "dropped")}
        return cls(**rest, numbers=numbers, texts=texts, dropped=tuple(data["dropped"]))


def read_recipe(path: str | Path) -> Recipe | None:
    """The recipe saved at ``path``; None for an older run's description (no ``recipe``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    saved = data.get("recipe") if isinstance(data, dict) else None
    if not saved or saved.get("format") != RECIPE_FORMAT:
        return None
    return Recipe.from_dict(saved)


# --------------------------------------------------------------------------- fitting


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Booleans as 0/1; dates and free JSON left out of the matrix."""
    keep = []
    for c, t in frame.schema.items():
        if t == pl.Boolean:
            keep.append(pl.col(c).cast(pl.Int8))
        elif not (t.is_temporal() or c == "extras"):
            keep.append(pl.col(c))
    return frame.select(keep)


def _strategy(s: pl.Series, missing: str) -> str:
    """The imputation for a numeric column: the one asked, or by skew (median when skewed)."""
    if missing in NUMBER_STATISTICS:
        return NUMBER_STATISTICS[missing]
    values = s.drop_nulls().cast(pl.Float64)
    skew = values.skew() if len(values) > 2 else 0.0
    skewed = skew is not None and math.isfinite(skew) and abs(skew) > SKEW_LIMIT
    return "median" if skewed else "mean"


def _float(c: str) -> pl.Expr:
    return pl.col(c).cast(pl.Float64).fill_nan(None)


def _mode(x: pl.Expr) -> pl.Expr:
    """The most frequent value, the smallest of those tied (scikit-learn's most_frequent)."""
    return x.drop_nulls().mode().min()


def _fill(c: str, strategy: str) -> pl.Expr:
    x = _float(c)
    stat = {"mean": x.mean(), "median": x.median(), "most_frequent": _mode(x)}[strategy]
    return stat.fill_null(0.0).alias(c)  # an empty column fills with 0 (keep_empty_features)


#: The aggregates each outlier rule's bounds are computed from (each once per column: in
#: one select, polars evaluated ``q1 - 1.5 * (q3 - q1)`` with each quantile three times).
_BOUND_AGGREGATES: dict[str, dict[str, Callable[[pl.Expr], pl.Expr]]] = {
    "iqr": {"q1": lambda x: x.quantile(0.25, "linear"), "q3": lambda x: x.quantile(0.75, "linear")},
    "zscore": {"mean": lambda x: x.mean(), "std": lambda x: x.std(ddof=1)},
    "none": {},
}


def _bounds(values: dict[str, float | None], outliers: str) -> tuple[float | None, float | None]:
    """``(lower, upper)`` of one column from its aggregates (none when a statistic is)."""
    if outliers == "iqr" and None not in (values["q1"], values["q3"]):
        q1, q3 = values["q1"], values["q3"]
        return q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)  # type: ignore[operator]
    if outliers == "zscore" and None not in (values["mean"], values["std"]):
        mean, std = values["mean"], values["std"]
        return mean - 3 * std, mean + 3 * std  # type: ignore[operator]
    return None, None


def _nonzero(scale: float) -> float:
    """scikit-learn's ``_handle_zeros_in_scale``: a scale of (nearly) zero becomes 1."""
    return 1.0 if not scale >= 10 * _EPS else scale


def _scaler(values: dict[str, float | None], scaling: str, n: int) -> tuple[float, float]:
    """``(offset, factor)`` for one column from its aggregates, as the scaler's ``fit`` sets them."""
    if scaling == "none":
        return 0.0, 1.0
    if scaling == "standard":
        mean, var = values["mean"] or 0.0, values["var"] or 0.0
        constant = var <= n * _EPS * var + (n * mean * _EPS) ** 2
        return mean, 1.0 if constant else math.sqrt(var)
    if scaling == "robust":
        return values["median"] or 0.0, _nonzero((values["q3"] or 0.0) - (values["q1"] or 0.0))
    low, high = values["min"] or 0.0, values["max"] or 0.0  # minmax
    factor = 1.0 / _nonzero(high - low)
    return 0.0 - low * factor, factor


#: The aggregates each scaling's fit reads.
_SCALE_AGGREGATES: dict[str, dict[str, Callable[[pl.Expr], pl.Expr]]] = {
    "standard": {"mean": lambda x: x.mean(), "var": lambda x: x.var(ddof=0)},
    "robust": {
        "median": lambda x: x.median(),
        "q1": lambda x: x.quantile(0.25, "linear"),
        "q3": lambda x: x.quantile(0.75, "linear"),
    },
    "minmax": {"min": lambda x: x.min(), "max": lambda x: x.max()},
    "none": {},
}


def _aggregates(
    x: pl.Expr, c: str, named: dict[str, Callable[[pl.Expr], pl.Expr]]
) -> list[pl.Expr]:
    return [agg(x).alias(f"{c}\0{name}") for name, agg in named.items()]


def _of(values: dict[str, Any], c: str) -> dict[str, Any]:
    """Column ``c``'s aggregates from a row of :func:`_aggregates` outputs, by name."""
    return {k.split("\0")[1]: v for k, v in values.items() if k.startswith(f"{c}\0")}


def _number_steps(
    frame: pl.DataFrame, strategies: dict[str, str], cfg: PreprocessConfig
) -> tuple[NumberStep, ...]:
    """Fill, bounds and scale of every numeric column, in three aggregate passes."""
    cols = sorted(strategies, key=lambda c: strategies[c])  # (matrix order: by strategy, stable)
    if not cols:
        return ()
    fills = frame.select(_fill(c, strategies[c]) for c in cols).row(0, named=True)
    filled = {c: _float(c).fill_null(fills[c]) for c in cols}
    rule = _BOUND_AGGREGATES[cfg.outliers]
    raw = (
        frame.select(e for c in cols for e in _aggregates(filled[c], c, rule)).row(0, named=True)
        if rule
        else {}
    )
    bounds = {c: _bounds(_of(raw, c), cfg.outliers) for c in cols}
    capped = {c: filled[c].clip(*bounds[c]) if cfg.outliers != "none" else filled[c] for c in cols}
    aggregates = [
        e for c in cols for e in _aggregates(capped[c], c, _SCALE_AGGREGATES[cfg.scaling])
    ]
    scaled = frame.select(aggregates).row(0, named=True) if aggregates else {}
    steps = []
    for c in cols:
        offset, factor = _scaler(_of(scaled, c), cfg.scaling, frame.height)
        lower, upper = bounds[c]
        steps.append(
            NumberStep(c, strategies[c], fills[c], lower, upper, cfg.scaling, offset, factor)
        )
    return tuple(steps)


def _encoding(frame: pl.DataFrame, c: str, cfg: PreprocessConfig, target: str | None) -> str:
    kind = cfg.encoding
    if kind == "auto":
        few = frame[c].n_unique() <= ONEHOT_MAX_LEVELS
        kind = "onehot" if few else ("target" if target else "label")
    return kind


def _target_step(column: str, values: pl.Series, y: pl.Series, fill: str) -> TextStep:
    """Fit scikit-learn's ``TargetEncoder`` on the imputed levels; keep its numbers."""
    encoder = _sklearn_preprocessing.TargetEncoder()
    encoder.fit(values.to_numpy().reshape(-1, 1).astype(object), y.to_numpy())
    means = encoder.target_mean_
    per_class = getattr(means, "shape", ()) != ()
    defaults = tuple(float(m) for m in means) if per_class else (float(means),)
    return TextStep(
        column,
        fill,
        "target",
        tuple(str(v) for v in encoder.categories_[0]),
        target_type=encoder.target_type_,
        classes=tuple(getattr(encoder, "classes_", ()) if per_class else ()),
        encodings=tuple(tuple(float(v) for v in e) for e in encoder.encodings_),
        defaults=defaults,
    )


def _text_steps(
    frame: pl.DataFrame,
    fit: pl.DataFrame,
    cols: list[str],
    kinds: dict[str, str],
    target: str | None,
) -> tuple[TextStep, ...]:
    """The fill (most frequent level) and the levels of every text column."""
    steps = []
    for c in cols:
        present = fit[c].drop_nulls()
        if present.is_empty():
            continue  # no level to learn in the rows fitted on
        fill = str(present.to_frame().select(_mode(pl.col(c))).item())
        values = fit[c].fill_null(fill)
        if kinds[c] == "target":
            steps.append(_target_step(c, values, fit[target], fill))  # type: ignore[index]
            continue
        levels = tuple(values.unique().sort().to_list())
        steps.append(TextStep(c, fill, kinds[c], levels))
    return tuple(steps)


def _inputs(frame: pl.DataFrame, target: str | None) -> tuple[list[str], list[str]]:
    """The numeric and text columns the matrix is built from."""
    numeric = [
        c for c, t in frame.schema.items() if t.is_numeric() and c not in ("source_row", target)
    ]
    text = [c for c, t in frame.schema.items() if t == pl.String and c != "extras"]
    # a text column with a different value on every row (an identifier) teaches nothing
    text = [c for c in text if frame[c].n_unique() < max(frame.height, 2) or frame.height <= 1]
    return numeric, text


def fit_recipe(
    frame: pl.DataFrame, blueprint: str, config: PreprocessConfig, target: str | None = None
) -> Recipe:
    """Choose columns and strategies from ``frame``, then fit their statistics with polars.

    Raises
    ------
    EmptyMatrixError
        When no numeric or text column is left to build a matrix from.
    ConfigError
        ``encoding='target'`` without a target column.
    """
    frame = _prepare(frame)
    dropped = [c for c in frame.columns if frame[c].null_count() == frame.height]
    frame = frame.drop(dropped)  # entirely missing columns carry nothing to learn from
    numeric, text = _inputs(frame, target)
    if not numeric and not text:
        raise EmptyMatrixError(
            f"blueprint {blueprint!r}: no numeric or text column to build a model matrix from"
        )
    kinds = {c: _encoding(frame, c, config, target) for c in text}
    if "target" in kinds.values() and not target:
        msg = f"encoding='target' needs a blueprint with a target column; {blueprint!r} has none"
        raise ConfigError(msg)
    strategies = {c: _strategy(frame[c], config.missing) for c in numeric}
    fit = frame.drop_nulls(numeric + text) if config.missing == "drop" else frame
    if fit.height > settings.fit_rows:
        fit = fit.sample(settings.fit_rows, seed=0)
    if fit.height == 0:
        raise TracerError(
            "no complete row to fit the preprocessor on (missing='drop' removed every row)"
        )
    return Recipe(
        blueprint,
        config.model_dump(),
        target,
        _number_steps(fit, strategies, config),
        _text_steps(frame, fit, text, kinds, target),
        tuple(dropped),
        config.missing == "drop",
    )


def fit_sample(
    frame: pl.DataFrame | pl.LazyFrame, limit: int | None = None, *, rows: int | None = None
) -> pl.DataFrame:
    """At most ``limit`` rows (default :attr:`Settings.fit_rows`) of ``frame``: all of them, or every k-th row (an even, repeatable spread).

    ``rows`` is the frame's row count when known (else it is counted).
    """
    return fit_rows(frame, settings.fit_rows if limit is None else limit, rows=rows)


def recipe_sample(frame: Any, blueprint: Blueprint, *, rows: int | None = None) -> pl.DataFrame:
    """The processed rows a blueprint's :class:`Recipe` is fitted on: at most 1,000,000 of
    them (:func:`fit_sample`), without identifiers, free JSON and the label.

    The label is the answer; a target stays, as target encoding learns from it, but never
    becomes a matrix column. ``rows`` is the frame's row count when known (else counted).
    """  # noqa: D205
    label = {blueprint.label} if blueprint.label else set()
    drop = {f.name for f in blueprint.fields if f.kind == "id"} | {"extras"} | label
    lf = frame.lazy()
    usable = lf.drop([c for c in lf.collect_schema().names() if c in drop])
    if rows is None:  # (before the drop: a file's own count, no pass over its rows)
        rows = count_rows(frame)
    return fit_sample(usable, rows=rows)


def recipe_for(
    frame: Any, blueprint: Blueprint, config: PreprocessConfig, *, rows: int | None = None
) -> Recipe:
    """Fit a blueprint's :class:`Recipe` on at most 1,000,000 of its processed rows (:func:`recipe_sample`).

    ``rows`` is the frame's row count when known (else it is counted).
    """
    sample = recipe_sample(frame, blueprint, rows=rows)
    return fit_recipe(sample, blueprint.name, config, blueprint.target)
