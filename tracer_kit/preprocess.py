"""Preprocess: turn the processed table into a model-ready matrix with scikit-learn, and keep the recipe.

The processed table and its features are never changed; the matrix is written beside it
(``<run_id>.model.parquet``) with ``source_row`` to join back, and the fitted
:class:`Preprocessor` is saved with skops (``<run_id>.preprocessor.skops``) so
``tk.load_preprocessor(run_id).transform(new_frame)`` gives the same values as the run.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from tracer_kit.engine import fit_rows, map_batches, on_spark, write_rows
from tracer_kit.errors import ConfigError, EmptyMatrixError, TracerError
from tracer_kit.settings import settings
from tracer_kit.skops_files import dump_skops, load_skops

__all__ = [
    "MATRIX_BATCH_ROWS",
    "ONEHOT_MAX_LEVELS",
    "OutlierCapper",
    "Preprocessor",
    "SKEW_LIMIT",
    "fit_preprocessor",
    "fit_sample",
    "dump_skops",
    "load_skops",
    "read_preprocessor",
    "save_preprocessor",
    "write_in_batches",
    "write_matrix",
]

ONEHOT_MAX_LEVELS = 10
SKEW_LIMIT = 1.0
_SCALERS = {"robust": RobustScaler, "standard": StandardScaler, "minmax": MinMaxScaler}


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
    """The fitted recipe: which columns, how they are imputed, capped, encoded and scaled.

    ``transform`` takes a frame shaped like the processed table and returns the polars matrix
    (with ``source_row`` first when the input has it).
    """

    def __init__(
        self, blueprint: str = "", config: dict[str, str] | None = None, target: str | None = None
    ) -> None:
        self.blueprint = blueprint
        self.config = config
        self.target = target

    def _numeric_steps(
        self, frame: pl.DataFrame, numeric: list[str], cfg: PreprocessConfig
    ) -> list[tuple[str, Pipeline, list[str]]]:
        """One impute-cap-scale pipeline per imputation strategy, over its columns."""
        by_strategy: dict[str, list[str]] = {}
        for c in numeric:
            by_strategy.setdefault(_numeric_strategy(frame[c], cfg.missing), []).append(c)
        self.strategies_ = {c: s for s, cols in by_strategy.items() for c in cols}
        transformers = []
        for strategy, cols in sorted(by_strategy.items()):
            steps = [
                ("impute", SimpleImputer(strategy=strategy, keep_empty_features=True)),
                ("cap", OutlierCapper(cfg.outliers)),
            ]
            if cfg.scaling != "none":
                steps.append(("scale", _SCALERS[cfg.scaling]()))
            transformers.append((f"num_{strategy}", Pipeline(steps), cols))
        return transformers

    def _categorical_steps(
        self, frame: pl.DataFrame, c: str, cfg: PreprocessConfig
    ) -> tuple[str, Pipeline, list[str]]:
        """Impute the most frequent level, then encode (one-hot for few levels, else label/target)."""
        kind = cfg.encoding
        if kind == "auto":
            few = frame[c].n_unique() <= ONEHOT_MAX_LEVELS
            kind = "onehot" if few else ("target" if self.target else "label")
        if kind == "target" and not self.target:
            msg = f"encoding='target' needs a blueprint with a target column; {self.blueprint!r} has none"
            raise ConfigError(msg)
        self.encodings_[c] = kind
        encoder = {
            "onehot": OneHotEncoder(handle_unknown="ignore", sparse_output=False),
            "label": OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
            "target": TargetEncoder(random_state=0),
        }[kind]
        steps = [
            ("impute", SimpleImputer(strategy="most_frequent", missing_values=None)),
            ("encode", encoder),
        ]
        return (f"cat_{c}", Pipeline(steps), [c])

    def fit(self, frame: pl.DataFrame, y: Any = None) -> Preprocessor:
        """Choose columns and strategies from the data, then fit the scikit-learn transformers."""
        cfg = PreprocessConfig(**(self.config or {}))
        frame = _prepare(frame)
        empty = [c for c in frame.columns if frame[c].null_count() == frame.height]
        self.dropped_ = empty  # entirely missing columns carry nothing to learn from
        frame = frame.drop(empty)
        numeric = [
            c
            for c, t in frame.schema.items()
            if t.is_numeric() and c not in ("source_row",) and c != self.target
        ]
        categorical = [
            c for c, t in frame.schema.items() if t == pl.String and c not in ("extras",)
        ]
        categorical = [
            c
            for c in categorical
            if frame[c].n_unique() < max(frame.height, 2) or frame.height <= 1
        ]
        self.numeric_ = numeric
        self.categorical_ = categorical
        self.drop_missing_ = cfg.missing == "drop"
        self.encodings_ = {}
        transformers = self._numeric_steps(frame, numeric, cfg)
        transformers += [self._categorical_steps(frame, c, cfg) for c in categorical]
        if not transformers:
            raise EmptyMatrixError(
                f"blueprint {self.blueprint!r}: no numeric or text column to build a model matrix from"
            )
        self.transformer_ = ColumnTransformer(
            transformers, remainder="drop", verbose_feature_names_out=False
        )
        fit_frame = frame.drop_nulls(numeric + categorical) if self.drop_missing_ else frame
        if fit_frame.height > settings.fit_rows:
            fit_frame = fit_frame.sample(settings.fit_rows, seed=0)
        if fit_frame.height == 0:
            raise TracerError(
                "no complete row to fit the preprocessor on (missing='drop' removed every row)"
            )
        target = fit_frame[self.target].to_numpy() if self.target else None
        self.transformer_.fit(fit_frame.select(numeric + categorical), target)
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The model-ready matrix for ``frame``: float32 values, uint8 one-hot columns."""
        frame = _prepare(frame)
        if self.drop_missing_:
            frame = frame.drop_nulls(self.numeric_ + self.categorical_)
        out = self.transformer_.transform(frame.select(self.numeric_ + self.categorical_))
        if not isinstance(out, pl.DataFrame):  # (steps hand numpy arrays on: one conversion)
            names = list(self.transformer_.get_feature_names_out())
            out = pl.DataFrame(np.asarray(out, dtype=np.float64), schema=names, orient="row")
        out = _downcast(out, self.encodings_)
        if "source_row" in frame.columns:
            out = out.insert_column(0, frame["source_row"])
        return out

    def expressions(self) -> list[pl.Expr] | None:
        """The fitted transform as polars expressions (matrix columns only), or None.

        Imputation, capping, standard/robust/min-max scaling, one-hot and ordinal encoding
        apply the fitted statistics with the same float64 operations, in the same order, as
        scikit-learn, then the same downcast, so the values are identical; this lets the
        matrix stream to Parquet. None when a step has no exact polars form (target
        encoding): use :meth:`transform` then.
        """
        names = list(self.transformer_.get_feature_names_out())
        exprs: list[pl.Expr] = []
        for name, pipe, cols in self.transformer_.transformers_:
            if name == "remainder":
                continue
            steps = dict(pipe.named_steps)
            if name.startswith("num_"):
                for i, c in enumerate(cols):
                    x = _numeric_expression(c, i, steps)
                    if x is None:
                        return None
                    exprs.append(x.cast(pl.Float32))
                continue
            imputer, encoder = steps["impute"], steps["encode"]
            x = pl.col(cols[0]).fill_null(pl.lit(imputer.statistics_[0], dtype=pl.String))
            categories = [str(v) for v in encoder.categories_[0]]
            if isinstance(encoder, OneHotEncoder):
                exprs += [(x == v).cast(pl.UInt8) for v in categories]
            elif isinstance(encoder, OrdinalEncoder):
                codes = x.replace_strict(
                    categories, list(range(len(categories))), default=-1, return_dtype=pl.Float64
                )
                exprs.append(codes.cast(pl.Float32))
            else:
                return None
        if len(exprs) != len(names):
            return None
        return [e.alias(n) for e, n in zip(exprs, names, strict=True)]

    def save(self, path: str | Path) -> Path:
        """Write this fitted preprocessor to ``path`` (:func:`save_preprocessor`)."""
        return save_preprocessor(self, path)

    def write_matrix(self, frame: Any, path: str | Path, *, keys: Sequence[str] = ()) -> int:
        """Write the matrix of ``frame`` to ``path`` (:func:`write_matrix`); returns rows written."""
        return write_matrix(self, frame, path, keys=keys)

    def describe(self) -> dict[str, Any]:
        """The choices made: column lists, imputation per column, encoding per column."""
        return {
            "numeric": self.numeric_,
            "categorical": self.categorical_,
            "dropped": self.dropped_,
            "imputation": self.strategies_,
            "encoding": self.encodings_,
            "config": self.config,
        }


def _scaled(x: pl.Expr, scale: Any, i: int) -> pl.Expr | None:
    """``x`` through a fitted scikit-learn scaler as its ``transform`` computes it (None: unknown)."""
    if scale is None:
        return x
    if isinstance(scale, StandardScaler):
        x = x - float(scale.mean_[i]) if scale.with_mean else x
        return x / float(scale.scale_[i]) if scale.with_std else x
    if isinstance(scale, RobustScaler):
        x = x - float(scale.center_[i]) if scale.with_centering else x
        return x / float(scale.scale_[i]) if scale.with_scaling else x
    if isinstance(scale, MinMaxScaler) and not scale.clip:
        return x * float(scale.scale_[i]) + float(scale.min_[i])
    return None


def _numeric_expression(column: str, i: int, steps: dict[str, Any]) -> pl.Expr | None:
    """Impute, cap and scale one numeric column as scikit-learn does (float64, same order)."""
    fill = float(steps["impute"].statistics_[i])
    cap = steps["cap"]
    if not np.isfinite(fill):
        return None
    x = pl.col(column).cast(pl.Float64).fill_nan(None).fill_null(fill)
    x = x.clip(float(cap.lower_[i]), float(cap.upper_[i]))
    return _scaled(x, steps.get("scale"), i)


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """Booleans as 0/1; dates and free JSON left out of the matrix."""
    keep = []
    for c, t in frame.schema.items():
        if t == pl.Boolean:
            keep.append(pl.col(c).cast(pl.Int8))
        elif t.is_temporal() or c == "extras":
            continue
        else:
            keep.append(pl.col(c))
    return frame.select(keep)


def _numeric_strategy(s: pl.Series, missing: str) -> str:
    if missing in ("mean", "median"):
        return missing
    if missing == "mode":
        return "most_frequent"
    values = s.drop_nulls().cast(pl.Float64)
    skew = values.skew() if len(values) > 2 else 0.0
    return "median" if skew is not None and np.isfinite(skew) and abs(skew) > SKEW_LIMIT else "mean"


def _downcast(out: pl.DataFrame, encodings: dict[str, str]) -> pl.DataFrame:
    onehot_prefixes = tuple(f"{c}_" for c, kind in encodings.items() if kind == "onehot")
    exprs = []
    for c, t in out.schema.items():
        if onehot_prefixes and c.startswith(onehot_prefixes):
            exprs.append(pl.col(c).cast(pl.UInt8))
        elif t.is_float():
            exprs.append(pl.col(c).cast(pl.Float32))
        else:
            exprs.append(pl.col(c))
    return out.select(exprs)


def fit_sample(frame: pl.DataFrame | pl.LazyFrame, limit: int | None = None) -> pl.DataFrame:
    """At most ``limit`` rows (default :attr:`Settings.fit_rows`) of ``frame``: all of them, or every k-th row (an even, repeatable spread)."""
    return fit_rows(frame, settings.fit_rows if limit is None else limit)


def fit_preprocessor(
    frame: pl.DataFrame | pl.LazyFrame, blueprint: Blueprint, config: PreprocessConfig
) -> Preprocessor:
    """Fit a :class:`Preprocessor` for a blueprint's processed table on at most 1,000,000 rows (:func:`fit_sample`)."""
    # the label is the answer, never an input (a target stays: target encoding learns from it,
    # and the preprocessor never makes it a column of the matrix)
    label = {blueprint.label} if blueprint.label else set()
    drop = {f.name for f in blueprint.fields if f.kind == "id"} | {"extras"} | label
    lf = frame.lazy()
    usable = lf.drop([c for c in lf.collect_schema().names() if c in drop])
    return Preprocessor(blueprint.name, config.model_dump(), blueprint.target).fit(
        fit_sample(usable)
    )


#: Rows transformed per batch when writing the model matrix.
MATRIX_BATCH_ROWS = 1_000_000


def write_matrix(
    prep: Preprocessor,
    frame: Any,
    path: str | Path,
    *,
    keys: Sequence[str] = (),
) -> int:
    """Write ``prep``'s matrix for ``frame`` to ``path`` (zstd Parquet); returns rows written.

    The fitted transform streams as polars expressions (:meth:`Preprocessor.expressions`);
    a transform without an exact polars form runs scikit-learn on batches of
    :data:`MATRIX_BATCH_ROWS` rows on two threads, written in order. Either way memory
    holds a few batches, whatever the table's size. On Spark (``frame`` a
    :class:`~tracer_kit.spark.PartitionFrame`) the executors apply it batch by batch and
    write part files in the folder ``path``. ``keys`` are columns kept beside
    ``source_row`` to join back by (an aggregated row, one per date, may have no source row).
    """
    lf = frame.lazy()
    exprs = prep.expressions()
    if exprs is not None:
        if prep.drop_missing_:
            lf = lf.drop_nulls(prep.numeric_ + prep.categorical_)
        first = [c for c in ("source_row", *keys) if c in lf.collect_schema().names()]
        return write_rows(lf.select(*first, *exprs), Path(path))
    if on_spark(lf):
        return write_rows(map_batches(lf, prep.transform), Path(path))
    return write_in_batches(prep.transform, lf, path)


def _slices(lf: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    total = lf.select(pl.len()).collect().item()
    for offset in range(0, total, rows):
        yield lf.slice(offset, rows).collect()


def write_in_batches(
    transform: Callable[[pl.DataFrame], pl.DataFrame],
    lf: pl.LazyFrame,
    path: str | Path,
    *,
    batch_rows: int = MATRIX_BATCH_ROWS,
    slices: bool = False,
) -> int:
    """``transform`` over ``lf`` in batches of ``batch_rows`` rows, written in order to
    ``path`` (zstd Parquet); returns rows written. Memory holds a few batches, whatever the
    table's size.

    By default batches stream from ``lf`` and are transformed on two threads. With
    ``slices`` each batch is read on its own (``lf.slice``; cheap when ``lf`` is a scan of a
    file) and transformed in this thread: for a transform that is slow and multi-threaded
    itself, such as a scikit-learn model's ``predict_proba``, where the streaming engine
    would read ahead of it and two Python threads would only contend.
    """  # noqa: D205
    import pyarrow.parquet as pq

    writer = None
    rows = 0

    def write(table: Any) -> None:
        nonlocal writer, rows
        if writer is None:
            writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
        writer.write_table(table)
        rows += table.num_rows

    try:
        if slices:
            for batch in _slices(lf, batch_rows):
                write(transform(batch).to_arrow())
        else:
            _two_threads(
                transform, lf.collect_batches(chunk_size=batch_rows, engine="streaming"), write
            )
        if writer is None:  # no rows at all: an empty file with the right columns
            transform(lf.head(0).collect()).write_parquet(path, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    return rows


def _two_threads(
    transform: Callable[[pl.DataFrame], pl.DataFrame],
    batches: Iterator[pl.DataFrame],
    write: Callable[[Any], None],
) -> None:
    """Transform batches on two threads, handing each result to ``write`` in order."""
    pending: deque[Future[Any]] = deque()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tracer-batches") as pool:
        for batch in batches:
            pending.append(pool.submit(lambda b: transform(b).to_arrow(), batch))
            if len(pending) >= 2:
                write(pending.popleft().result())
        while pending:
            write(pending.popleft().result())


def save_preprocessor(prep: Preprocessor, path: str | Path) -> Path:
    """Write the fitted preprocessor with skops (no pickle)."""
    path = dump_skops(prep, path)
    path.with_suffix(".json").write_text(json.dumps(prep.describe(), indent=1, default=str))
    return path


def read_preprocessor(path: str | Path) -> Preprocessor:
    """Load a preprocessor saved by tracer-kit (:func:`load_skops`)."""
    return load_skops(path, "a preprocessor")
