"""The pipeline: the only place that calls the stages in order.

``file -> ingest -> compatibility -> validate (quarantine) -> features -> final check ->
store (one commit) -> report``. The CLI, the notebooks and the widgets all call
:func:`run_pipeline`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit._scratch import sink_sorted
from tracer_kit.blueprints import Blueprint, FeatureContext, get_blueprint
from tracer_kit.config import Config, config_to_jsonable, load_config
from tracer_kit.errors import PipelineBugError, QualityGateError
from tracer_kit.ingest import file_sha256
from tracer_kit.preprocess import fit_preprocessor, save_preprocessor, write_matrix
from tracer_kit.profiling import column_profiles
from tracer_kit.quality import QualityResult, assess_ingested, raise_for_gate, read_file
from tracer_kit.run import STAGES, ProgressFn, RunLifecycle
from tracer_kit.store import (
    DEFAULT_WAREHOUSE,
    BronzeFiles,
    check_run_id,
    commit_run,
    dataset_name,
    new_run_id,
    open_warehouse,
    record_timings,
)
from tracer_kit.types import Issue, RunResult
from tracer_kit.workspace import DEFAULT_PROCESSED, DEFAULT_REPORTS, Workspace

__all__ = [
    "MOSTLY_NULL",
    "RunResult",
    "STAGES",
    "build_processed",
    "feature_context",
    "mostly_null_issues",
    "package_versions",
    "run_pipeline",
]

log = logging.getLogger("tracer_kit")


def package_versions() -> dict[str, str]:
    """Versions of tracer-kit and the libraries that shape its results."""
    out = {"python": platform.python_version()}
    for name in ("tracer-kit", "polars", "duckdb", "pyarrow", "pandera", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class _JsonLines(logging.Handler):
    """Writes each record of one run as a JSON line with the run id."""

    def __init__(self, path: Path, run_id: str) -> None:
        super().__init__(logging.INFO)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a", encoding="utf-8")
        self.run_id = run_id

    def emit(self, record: logging.LogRecord) -> None:
        entry = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "run_id": self.run_id,
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        self.fh.write(json.dumps(entry, default=str) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()
        super().close()


#: A feature null in more than this share of the processed rows raises an issue.
MOSTLY_NULL = 0.5


def _final_check(
    processed: pl.LazyFrame, blueprint: Blueprint, rows_valid: int
) -> tuple[int, dict[str, int]]:
    """Fail on infinite feature values or lost rows; return the row count and each feature's nulls."""
    schema = processed.collect_schema()
    floats = [c for c, t in schema.items() if t.is_float()]
    features = [f for f in blueprint.feature_names if f in schema]
    exprs = [pl.len().alias("__rows")]
    exprs += [pl.col(c).is_infinite().any().alias(f"inf:{c}") for c in floats]
    exprs += [pl.col(c).null_count().alias(f"null:{c}") for c in features]
    found = processed.select(exprs).collect(engine="streaming").row(0, named=True)
    rows = found["__rows"]
    inf = [c for c in floats if found[f"inf:{c}"]]
    if inf:
        msg = f"features {inf} hold infinite values (a bug in blueprint {blueprint.name!r})"
        raise PipelineBugError(msg)
    if not blueprint.aggregates and rows != rows_valid:
        msg = f"{rows_valid} valid rows became {rows} processed rows (a bug)"
        raise PipelineBugError(msg)
    return rows, {c: found[f"null:{c}"] for c in features}


def mostly_null_issues(
    nulls: dict[str, int], rows: int, blueprint: Blueprint, valid: pl.LazyFrame, ctx: FeatureContext
) -> list[dict[str, Any]]:
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
            ).to_dict()
        )
    return issues


def feature_context(q: QualityResult, config: Config) -> FeatureContext:
    """What the features may know beyond the rows: the run's dates and the config's plan order."""
    levels = tuple(config.plan_levels) if config.plan_levels else None
    return FeatureContext(run_date=q.run_date, reference_date=q.reference_date, plan_levels=levels)


def build_processed(
    q: QualityResult, blueprint: Blueprint, dest: str | Path, ctx: FeatureContext
) -> Path:
    """Features over the valid rows, written to ``dest`` sorted by the blueprint key then ``source_row``.

    The feature plan streams from the valid rows; :func:`sink_sorted` writes it in key order
    (straight through when the rows already come in that order, else one key range at a
    time). Columns the blueprint does not know are kept as one JSON text column, ``extras``.
    """
    dest = Path(dest)
    lf = blueprint.build_features(q.valid_lazy(), ctx)
    known = {f.name for f in blueprint.fields} | {"source_row", "source_line"}
    extras = [c for c in q.valid_columns if c not in known]
    # an aggregated row has no single source record, so no extras
    keep_extras = extras and not blueprint.aggregates
    extra = (
        pl.struct(extras).struct.json_encode() if keep_extras else pl.lit(None, dtype=pl.String)
    ).alias("extras")
    schema = blueprint.processed_schema()
    lf = lf.with_columns(extra).select(pl.col(name).cast(dtype) for name, dtype in schema.items())
    sink_sorted(lf, dest, [*blueprint.key, "source_row"])
    return dest


def run_pipeline(
    path: str | Path,
    blueprint: str | Blueprint,
    *,
    config: Config | dict[str, Any] | str | Path | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    output_dir: str | Path = DEFAULT_REPORTS,
    processed_dir: str | Path = DEFAULT_PROCESSED,
    run_id: str | None = None,
    return_frame: bool = True,
    run_date: dt.date | str | None = None,
    progress: ProgressFn | None = None,
    report: bool = True,
) -> RunResult:
    """Run one file through a blueprint: ingest, validate, features, store, report.

    Parameters
    ----------
    path
        The input file (any format :func:`tracer_kit.read_table` reads).
    blueprint
        A blueprint name (``tracer blueprints`` lists them) or object.
    config
        A :class:`Config`, a dict of its fields, or a JSON/YAML file.
    warehouse
        The DuckDB file; created when missing.
    output_dir
        Reports go to ``<output_dir>/<run_id>/``.
    processed_dir
        Processed Parquet goes to ``<processed_dir>/<blueprint>/<run_id>.parquet``; staging to
        ``<processed_dir>/../staging/<run_id>/``.
    run_id
        Assign the run id (callers such as ``run_notebook`` do); default a new one.
    return_frame
        Put the processed DataFrame on the result (False saves memory on big files).
    run_date
        The run's UTC date (default today); reruns pass the stored one.
    progress
        ``progress(stage, index, total)`` is called as each stage starts.
    report
        Render ``report.html`` after the commit.

    Returns
    -------
    RunResult
        State COMPLETED, counts, score, issues, features, timings and output paths.

    Raises
    ------
    QualityGateError
        When the quality gate fails; bronze, quarantine and issues are still committed.
    IngestError, CompatibilityError, ConfigError
        For unreadable files, missing fields and bad options; the run is marked FAILED.

    Examples
    --------
    >>> import tracer_kit as tk
    >>> r = tk.run_pipeline("data/samples/customers.csv", "customer_churn")  # doctest: +SKIP
    >>> r.state, r.quality_score  # doctest: +SKIP
    ('COMPLETED', 99.1)
    """
    bp = get_blueprint(blueprint)
    cfg = load_config(config)
    run_id = check_run_id(run_id or new_run_id())
    path = Path(path)
    if isinstance(run_date, str):
        run_date = dt.date.fromisoformat(run_date)
    run_date = run_date or cfg.run_date or dt.datetime.now(dt.UTC).date()
    space = Workspace.of(warehouse, processed_dir, output_dir)
    processed_dir = space.processed
    staging = space.run_staging(run_id)
    bronze_dir = space.bronze
    run_dir = space.run_reports(run_id)
    final_parquet = space.processed_file(bp.name, run_id)
    outputs = {
        "parquet": str(final_parquet),
        "model": str(final_parquet.with_suffix(".model.parquet")),
        "preprocessor": str(final_parquet.with_suffix(".preprocessor.skops")),
        "preprocessor_json": str(final_parquet.with_suffix(".preprocessor.json")),
        "staging": str(staging),
        "report": str(run_dir / "report.html"),
        "log": str(run_dir / "run.log"),
    }
    params: dict[str, Any] = {
        "config": config_to_jsonable(cfg),
        "run_date": run_date.isoformat(),
        "reference_date": cfg.reference_date.isoformat() if cfg.reference_date else None,
        "processed_dir": str(processed_dir),
        "output_dir": str(output_dir),
    }
    handler = _JsonLines(run_dir / "run.log", run_id)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    life = RunLifecycle(warehouse, run_id, progress=progress)
    dataset = cfg.dataset or dataset_name(path)
    record = {
        "run_id": run_id,
        "blueprint": bp.name,
        "dataset": dataset,
        "input_path": str(path),
        "params": params,
        "versions": package_versions(),
        "outputs": outputs,
    }
    result = RunResult(
        run_id=run_id,
        blueprint=bp.name,
        dataset=dataset,
        state="IN_PROGRESS",
        input_path=str(path),
        params=params,
        outputs=outputs,
    )
    try:
        with life:
            open_warehouse(warehouse)
            life.start(record)
            log.info("run started: %s on %s", bp.name, path, extra={"fields": {"input": str(path)}})
            with life.stage("ingest"):
                ing = read_file(path, cfg, staging_dir=staging, blueprint=bp)
                for warning in ing.info.warnings:
                    log.warning(warning)
                result.input_sha256 = ing.info.sha256
                life.known["input_sha256"] = ing.info.sha256
            read_options = {**ing.info.read_options(), "hash": ing.info.read_options_hash()}
            with life.stage("validate"):
                q = assess_ingested(ing, bp, config=cfg, run_date=run_date, work_dir=staging)
                mapping = q.column_map
                bronze = BronzeFiles(q.bronze_path, q.bronze_rejects_path, q.bronze_columns)
                quarantine = q.quarantine_path
            params.update(
                reference_date=q.reference_date.isoformat() if q.reference_date else None,
                column_map=mapping,
                date_formats=q.date_formats,
            )
            result = result.model_copy(
                update={
                    "rows_in": q.rows_in,
                    "rows_valid": q.rows_valid,
                    "rows_quarantined": q.rows_quarantined,
                    "quality_score": q.score,
                    "score_parts": q.score_parts,
                    "issues": [i.to_dict() for i in q.issues],
                    "params": params,
                }
            )
            run_fields = {
                "run_id": run_id,
                "input_path": str(path),
                "input_sha256": ing.info.sha256,
                "read_options": read_options,
                "read_options_hash": ing.info.read_options_hash(),
                "params": params,
                "rows_in": q.rows_in,
                "rows_valid": q.rows_valid,
                "rows_quarantined": q.rows_quarantined,
                "quality_score": q.score,
                "score_parts": q.score_parts,
                "outputs": outputs,
            }
            if not q.passed:
                gate_msg = f"{path}: quality gate failed: " + "; ".join(q.gate_failures)
                commit_run(
                    warehouse,
                    bp,
                    {**run_fields, "state": "FAILED", "rows_out": 0, "error": gate_msg},
                    bronze=bronze,
                    bronze_dir=bronze_dir,
                    quarantine=quarantine,
                    issues=result.issues,
                    profiles=None,
                    staged_parquet=None,
                    final_parquet=None,
                    stage_seconds=life.seconds,
                )
                life.committed()
                shutil.rmtree(staging, ignore_errors=True)
                result = result.model_copy(
                    update={"state": "FAILED", "error": gate_msg, "stage_seconds": life.seconds}
                )
                log.error(gate_msg)
                if report:
                    _render_report(run_id, warehouse, output_dir, result)
                try:
                    raise_for_gate(q, path)
                except QualityGateError as exc:
                    exc.result = result
                    raise
            staged_parquet = staging / f"{run_id}.parquet"
            with life.stage("features"):
                ctx = feature_context(q, cfg)
                build_processed(q, bp, staged_parquet, ctx)
                processed = pl.scan_parquet(staged_parquet)
                rows_out, nulls = _final_check(processed, bp, q.rows_valid)
                result.issues += mostly_null_issues(nulls, rows_out, bp, q.valid_lazy(), ctx)
                for issue in result.issues[len(q.issues) :]:
                    log.warning(issue["message"])
            with life.stage("preprocess"):
                prep = fit_preprocessor(processed, bp, cfg.preprocess)
                staged_model = staging / f"{run_id}.model.parquet"
                write_matrix(prep, processed, staged_model)
                staged_prep = save_preprocessor(prep, staging / f"{run_id}.preprocessor.skops")
                params["preprocess"] = prep.describe()
                moves = [
                    (staged_model, Path(outputs["model"])),
                    (staged_prep, Path(outputs["preprocessor"])),
                    (staged_prep.with_suffix(".json"), Path(outputs["preprocessor_json"])),
                ]
            with life.stage("store"):
                profile_columns = [c for c in processed.collect_schema().names() if c != "extras"]
                profiles = column_profiles(processed, profile_columns)
                outputs["parquet_sha256"] = file_sha256(staged_parquet)
                outputs["model_sha256"] = file_sha256(staged_model)
                run_fields.update(state="COMPLETED", rows_out=rows_out, error=None)
                commit_run(
                    warehouse,
                    bp,
                    run_fields,
                    bronze=bronze,
                    bronze_dir=bronze_dir,
                    quarantine=quarantine,
                    issues=result.issues,
                    profiles=profiles,
                    staged_parquet=staged_parquet,
                    final_parquet=final_parquet,
                    stage_seconds=life.seconds,
                    extra_files=moves,
                )
                life.committed()  # the commit point: a later report failure leaves it COMPLETED
                shutil.rmtree(staging, ignore_errors=True)
            result = result.model_copy(
                update={
                    "state": "COMPLETED",
                    "rows_out": rows_out,
                    "features_created": list(bp.feature_names),
                    "outputs": dict(outputs),
                    "stage_seconds": life.seconds,
                    "frame": pl.read_parquet(final_parquet) if return_frame else None,
                }
            )
            record_timings(
                warehouse, run_id, life.seconds
            )  # the store stage ended after its commit
            if report:
                with life.stage("report"):
                    _render_report(run_id, warehouse, output_dir, result)
                record_timings(warehouse, run_id, life.seconds)
            result.stage_seconds = dict(life.seconds)
            log.info(
                "run completed in %.2f s",
                sum(life.seconds.values()),
                extra={
                    "fields": {
                        "state": "COMPLETED",
                        "rows_in": result.rows_in,
                        "rows_valid": result.rows_valid,
                        "rows_quarantined": result.rows_quarantined,
                        "rows_out": result.rows_out,
                        "quality_score": result.quality_score,
                    }
                },
            )
            return result
    finally:
        log.removeHandler(handler)
        handler.close()


def _render_report(
    run_id: str, warehouse: str | Path, output_dir: str | Path, result: RunResult
) -> None:
    from tracer_kit.report import quality_report

    quality_report(run_id, warehouse=warehouse, output_dir=output_dir, frame=result.frame)
