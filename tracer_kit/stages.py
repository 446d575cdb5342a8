"""The stages of a run, each a function of what it needs that returns a typed value.

``source -> ingest -> Ingested -> check -> Checked -> featurize -> Featured ->
prepare -> Prepared -> fit_or_apply_model -> Modelled``; :mod:`tracer_kit.pipeline` passes
each value to the next stage, its :class:`~tracer_kit.run.RunLifecycle` times them, and
it records their facts in the run's :class:`~tracer_kit.record.RunRecord` and commits.
A stage receives only the options it uses (the read options, the preprocessing or the
model's), never the run itself, so it can be called, tested and served on its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit.aggregates import Aggregates
from tracer_kit.blueprints import Blueprint, FeatureContext, blueprint_form, code_site
from tracer_kit.cells import shorten
from tracer_kit.config import Config, ModelConfig, PreprocessConfig
from tracer_kit.engine import POLARS, Engine, engine_of
from tracer_kit.errors import BlueprintError, EmptyMatrixError, PipelineBugError, TracerError
from tracer_kit.heavy import preload_pandera
from tracer_kit.ingest import Ingested
from tracer_kit.model import (
    MODEL_OFF,
    ModelOutcome,
    apply_model,
    fit_model,
    model_task,
    read_model,
)
from tracer_kit.outputs import OUTPUTS, OutputContext
from tracer_kit.quality import QualityResult, assess_ingested, read_context
from tracer_kit.quality.matching import config_column_map
from tracer_kit.recipe import Recipe, fit_recipe, recipe_sample
from tracer_kit.record import GateVerdict, ModelSummary
from tracer_kit.trained import TrainedRun, training_recipe
from tracer_kit.types import Issue

__all__ = [
    "MOSTLY_NULL",
    "Checked",
    "Featured",
    "Modelled",
    "Prepared",
    "Written",
    "build_processed",
    "check",
    "feature_context",
    "featurize",
    "fit_or_apply_model",
    "ingest",
    "mostly_null_issues",
    "prepare",
    "write_outputs",
]

log = logging.getLogger("tracer_kit")

#: A feature null in more than this share of the processed rows raises an issue.
MOSTLY_NULL = 0.5


# --------------------------------------------------------------------------- stage values


@dataclass(frozen=True)
class Checked:
    """The check stage's value: the quality result, the blueprint form the file was checked
    against (customer_churn's snapshot form for a file without dates), and the facts the
    run records (column map, date formats, transforms, personal fields, the gate's verdict).
    """  # noqa: D205

    quality: QualityResult
    blueprint: Blueprint
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class Featured:
    """The features stage's value: the processed rows (staged), their count, the issues the
    features raised, and the file-wide statistics they used.
    """  # noqa: D205

    processed: Path
    rows: int
    issues: tuple[Issue, ...] = ()
    statistics: dict[str, Any] | None = None


@dataclass(frozen=True)
class Written:
    """Files a stage's outputs wrote in staging (``staged -> final`` pairs), the output keys
    they left out (no path is recorded for them), and facts for the run's record.
    """  # noqa: D205

    files: tuple[tuple[Path, Path], ...] = ()
    absent: tuple[str, ...] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """The preprocess stage's value: the fitted (or the training run's) recipe and the
    files written with it (the model-ready matrix, the recipe itself).
    """  # noqa: D205

    recipe: Recipe | None  # None: nothing to build a matrix from (``why`` in notes)
    written: Written
    #: The processed rows the recipe was fitted on (an even spread above 1,000,000 rows;
    #: the column profiles read their medians and histograms from it). None: not fitted here.
    sample: pl.DataFrame | None = None


@dataclass(frozen=True)
class Modelled:
    """The model stage's value: the model's summary (None: the blueprint has no model stage),
    its issues and notes, and the files written (predictions, the saved model).
    """  # noqa: D205

    summary: ModelSummary | None
    written: Written
    issues: tuple[Issue, ...] = ()
    notes: tuple[str, ...] = ()
    outcome: ModelOutcome | None = None


# --------------------------------------------------------------------------- ingest


def ingest(
    source: Any,
    cfg: Config,
    *,
    staging: Path,
    blueprint: Blueprint,
    engine: Engine = POLARS,
) -> Ingested:
    """Read the source as text columns (on Spark: its records as a Spark frame).

    It uses the read options (``cfg.read``) and, to pick a workbook's sheet, the column map.
    """
    preload_pandera()  # (validation's schema check needs it; it loads beside the read)
    return engine.read(source, cfg.read, read_context(cfg, staging, blueprint))


# --------------------------------------------------------------------------- check


def check(
    ing: Ingested,
    blueprint: Blueprint,
    cfg: Config,
    *,
    run_date: dt.date,
    staging: Path,
    references: Mapping[str, Any] | None = None,
) -> Checked:
    """Validate the rows against the blueprint (its snapshot form when the file fits it).

    ``references``: per field with ``references``, the values the referenced run holds.
    """
    blueprint = blueprint_form(blueprint, ing.info.columns, config_column_map(cfg, blueprint))
    q = assess_ingested(
        ing, blueprint, config=cfg, run_date=run_date, work_dir=staging, references=references
    )
    facts = {
        "reference_date": q.reference_date,
        "column_map": q.column_map,
        "date_formats": q.date_formats,
        "transforms": q.transform_counts,
        "personal": q.personal,
        "personal_columns": [
            next((src for src, dst in q.column_map.items() if dst == name), name)
            for name in q.personal
        ],
        "gate": GateVerdict(passed=q.passed, failures=list(q.gate_failures)),
    }
    return Checked(q, blueprint, facts)


# --------------------------------------------------------------------------- features


def feature_context(q: QualityResult, config: Config) -> FeatureContext:
    """What the features may know beyond the rows: the run's dates and the config's plan order."""
    levels = tuple(config.features.plan_levels) if config.features.plan_levels else None
    return FeatureContext(
        run_date=q.run_date,
        reference_date=q.reference_date,
        plan_levels=levels,
        tenure_unit=config.features.tenure_unit,
    )


def build_processed(
    q: QualityResult, blueprint: Blueprint, dest: str | Path, ctx: FeatureContext
) -> Path:
    """Features over the valid rows, written to ``dest`` in the order the feature plan yields them.

    A row-level plan keeps source order (``source_row``); a plan that orders rows itself
    (windows per product and date, one row per date) keeps its key order. Only a plan whose
    rows come in neither order is sorted by the blueprint key then ``source_row`` afterwards,
    so the file's order never depends on the engine's threads. Columns the blueprint does not
    know are kept as one JSON text column, ``extras``.
    """
    dest = Path(dest)
    valid = q.valid_lazy()
    engine = engine_of(valid)
    lf = engine.features(valid, blueprint, ctx)  # (on Spark placed by the blueprint's SparkPlan)
    known = {f.name for f in blueprint.fields} | {"source_row", "source_line"}
    extras = [c for c in q.valid_columns if c not in known]
    # an aggregated row has no single source record, so no extras
    keep_extras = extras and not blueprint.aggregates
    extra = (
        pl.struct(extras).struct.json_encode() if keep_extras else pl.lit(None, dtype=pl.String)
    ).alias("extras")
    schema = blueprint.processed_schema()
    lf = lf.with_columns(extra).select(pl.col(name).cast(dtype) for name, dtype in schema.items())
    engine.write_ordered(lf, dest, blueprint.key)
    return dest


def _final_check(
    processed: pl.LazyFrame, blueprint: Blueprint, rows_valid: int
) -> tuple[int, dict[str, int]]:
    """Fail on infinite feature values or lost rows; return the row count and each feature's nulls."""
    schema = processed.collect_schema()
    floats = [c for c, t in schema.items() if t.is_float()]
    features = [f for f in blueprint.feature_names if f in schema]
    agg = Aggregates()
    agg.add("rows", "n", pl.len(), "sum")
    for c in floats:
        agg.add("inf", c, pl.col(c).is_infinite().any(), "max")
    for c in features:
        agg.add("null", c, pl.col(c).null_count(), "sum")
    found = agg.collect(processed)
    rows = int(found["rows"]["n"])
    inf = [c for c in floats if found["inf"][c]]
    if inf:
        msg = f"features {inf} hold infinite values (a bug in blueprint {blueprint.name!r})"
        raise PipelineBugError(msg)
    if not blueprint.aggregates and rows != rows_valid:
        msg = f"{rows_valid} valid rows became {rows} processed rows (a bug)"
        raise PipelineBugError(msg)
    return rows, {c: int(found["null"][c]) for c in features}


def mostly_null_issues(
    nulls: dict[str, int], rows: int, blueprint: Blueprint, valid: pl.LazyFrame, ctx: FeatureContext
) -> list[Issue]:
    """A medium issue per feature null for most processed rows, naming the cause when known."""
    issues = []
    for feature, n in nulls.items():
        if not rows or n / rows <= MOSTLY_NULL:
            continue
        cause = blueprint.null_cause(feature, valid, ctx) if blueprint.null_cause else None
        message = f"{feature} is null for {n:,} of {rows:,} rows ({100 * n / rows:.0f}%)"
        issues.append(
            Issue(
                severity="medium",
                column=feature,
                check="feature_mostly_null",
                observed=round(n / rows, 6),
                threshold=MOSTLY_NULL,
                rows_affected=n,
                message=f"{message}: {cause}" if cause else message,
            )
        )
    return issues


@contextlib.contextmanager
def _user_code(blueprint: Blueprint) -> Iterator[None]:
    """An error inside a user blueprint's feature code is one line naming the code's file and
    line (the polars plan only with ``TRACER_DEBUG=1``); a built-in's is a bug, raised as is.
    """  # noqa: D205
    try:
        yield
    except TracerError:
        raise
    except Exception as exc:
        module = getattr(blueprint.build_features, "__module__", "") or ""
        if module.startswith("tracer_kit.") or os.environ.get("TRACER_DEBUG"):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = (
            f"blueprint {blueprint.name!r}: its feature code failed "
            f"({code_site(blueprint.build_features)}): {shorten(text, 300)}"
        )
        raise BlueprintError(msg) from None


def featurize(
    checked: Checked,
    cfg: Config,
    *,
    dest: Path,
    statistics: dict[str, Any] | None = None,
) -> Featured:
    """The blueprint's features over the valid rows, written to ``dest``, then checked.

    ``statistics``: the file-wide statistics to use (a predict run passes its training
    run's); otherwise the blueprint computes them from these rows.
    """
    q, bp = checked.quality, checked.blueprint
    ctx = feature_context(q, cfg)
    stats = None
    with _user_code(bp):
        if bp.feature_statistics is not None:
            stats = statistics or bp.feature_statistics(q.valid_lazy(), ctx)
            ctx = replace(ctx, statistics=stats)
        build_processed(q, bp, dest, ctx)
    rows, nulls = _final_check(q.engine.scan(dest), bp, q.rows_valid)
    issues = mostly_null_issues(nulls, rows, bp, q.valid_lazy(), ctx)
    return Featured(dest, rows, tuple(issues), stats)


# --------------------------------------------------------------------------- outputs


def write_outputs(
    ctx: OutputContext, stage: str, *, staging: Path, finals: Mapping[str, str | None]
) -> Written:
    """Write a stage's registered outputs into ``staging``; ``finals``: each key's final path."""
    files, absent = [], []
    for output in OUTPUTS.values():
        if output.stage != stage:
            continue
        staged = {key: staging / Path(str(finals[key])).name for key in output.files}
        output.write(ctx, staged)
        for key, path in staged.items():
            if path.exists():
                files.append((path, Path(str(finals[key]))))
            else:
                absent.append(key)
    return Written(tuple(files), tuple(absent), dict(ctx.notes))


# --------------------------------------------------------------------------- preprocess


def prepare(
    processed: Any,
    blueprint: Blueprint,
    cfg: PreprocessConfig,
    *,
    run_id: str,
    staging: Path,
    finals: Mapping[str, str | None],
    trained: TrainedRun | None = None,
    rows: int | None = None,
) -> Prepared:
    """Fit the preprocessing recipe (or take the training run's), then write the preprocess outputs.

    Rows with no number or category to learn from (a contract of identifiers and dates)
    get no model-ready matrix, and the run says so. ``rows``: the processed rows' count.
    """
    ctx = OutputContext(run_id, blueprint, processed)
    sample = None if trained else recipe_sample(processed, blueprint, rows=rows)
    recipe: Recipe | None = None
    try:
        recipe = (
            training_recipe(trained)
            if trained
            else fit_recipe(sample, blueprint.name, cfg, blueprint.target)
        )
        ctx.fitted["recipe"] = recipe
    except EmptyMatrixError as exc:
        ctx.notes["preprocess"] = {"matrix": None, "why": str(exc)}
    written = write_outputs(ctx, "preprocess", staging=staging, finals=finals)
    return Prepared(recipe, written, sample)


# --------------------------------------------------------------------------- model


def _outcome(
    processed: Any, blueprint: Blueprint, cfg: ModelConfig, trained: TrainedRun | None
) -> ModelOutcome:
    if trained is not None:
        saved = read_model(trained.predictor)
        outcome = apply_model(saved, processed, blueprint, cfg)
        outcome.summary = {"model": "saved", "trained_by": trained.run_id}
        return outcome
    if not cfg.enabled:
        return ModelOutcome({"model": None, "why": MODEL_OFF})
    outcome = fit_model(processed, blueprint, cfg)
    assert outcome is not None
    return outcome


def fit_or_apply_model(
    processed: Any,
    blueprint: Blueprint,
    cfg: ModelConfig,
    *,
    run_id: str,
    staging: Path,
    finals: Mapping[str, str | None],
    trained: TrainedRun | None = None,
    recipe: Recipe | None = None,
) -> Modelled:
    """Fit the blueprint's model (or apply the training run's); stage predictions and model.

    ``recipe``: the preprocess stage's, saved beside the model as a scikit-learn object.
    """
    ctx = OutputContext(run_id, blueprint, processed, fitted={"recipe": recipe})
    if model_task(blueprint) is None:
        return Modelled(None, write_outputs(ctx, "model", staging=staging, finals=finals))
    outcome = _outcome(processed, blueprint, cfg, trained)
    ctx.fitted["model"] = outcome
    summary = ModelSummary.model_validate(outcome.summary)
    if outcome.saved is not None:
        summary.training_rows = outcome.training_rows
    written = write_outputs(ctx, "model", staging=staging, finals=finals)
    notes = (*outcome.notes, *(issue.message for issue in outcome.issues))
    return Modelled(summary, written, tuple(outcome.issues), notes, outcome)
