"""The pipeline: the only place that calls the stages in order.

``file -> ingest -> compatibility -> validate (quarantine) -> features -> final check ->
store (one commit) -> report``. The CLI, the notebooks and the widgets all call
:func:`run_pipeline`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import polars as pl

from tracer_kit._scratch import is_sorted_by, sink_sorted
from tracer_kit.aggregates import Aggregates
from tracer_kit.blueprints import (
    Blueprint,
    FeatureContext,
    blueprint_form,
    code_site,
    get_blueprint,
)
from tracer_kit.cells import shorten
from tracer_kit.config import Config, config_to_jsonable, load_config
from tracer_kit.engine import on_spark
from tracer_kit.errors import (
    BlueprintError,
    ConfigError,
    PipelineBugError,
    QualityGateError,
    TracerError,
)
from tracer_kit.ingest import Ingested, file_sha256
from tracer_kit.model import (
    MODELS,
    ModelOutcome,
    TrainedRun,
    apply_model,
    fit_model,
    read_model,
    trained_run,
)
from tracer_kit.outputs import OUTPUTS, OutputContext
from tracer_kit.personal import (
    PSEUDONYMISE_KEY_ENV,
    encryption_key,
    key_fingerprint,
    protect_run_files,
)
from tracer_kit.profiling import column_profiles, hide_personal
from tracer_kit.quality import QualityResult, assess_ingested, raise_for_gate, read_file
from tracer_kit.quality.matching import config_column_map
from tracer_kit.run import STAGES, ProgressFn, RunLifecycle
from tracer_kit.settings import settings
from tracer_kit.types import Issue, RunOutputs, RunResult
from tracer_kit.warehouse import (
    DEFAULT_WAREHOUSE,
    BronzeFiles,
    ModelRecord,
    RunCommit,
    check_run_id,
    commit_run,
    dataset_name,
    new_run_id,
    open_warehouse,
    reading_run,
    record_timings,
    run_quarantine_path,
    run_row,
)
from tracer_kit.workspace import DEFAULT_PROCESSED, DEFAULT_REPORTS, Workspace
from tracer_kit.writing import check_destination, write_table

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


def feature_context(q: QualityResult, config: Config) -> FeatureContext:
    """What the features may know beyond the rows: the run's dates and the config's plan order."""
    levels = tuple(config.plan_levels) if config.plan_levels else None
    return FeatureContext(
        run_date=q.run_date,
        reference_date=q.reference_date,
        plan_levels=levels,
        tenure_unit=config.tenure_unit,
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
    if not on_spark(valid):
        lf = blueprint.build_features(valid, ctx)
    else:  # Spark: the same build_features, placed by the blueprint's SparkPlan
        from tracer_kit.spark.features import spark_features

        lf = spark_features(valid, blueprint, ctx)
    known = {f.name for f in blueprint.fields} | {"source_row", "source_line"}
    extras = [c for c in q.valid_columns if c not in known]
    # an aggregated row has no single source record, so no extras
    keep_extras = extras and not blueprint.aggregates
    extra = (
        pl.struct(extras).struct.json_encode() if keep_extras else pl.lit(None, dtype=pl.String)
    ).alias("extras")
    schema = blueprint.processed_schema()
    lf = lf.with_columns(extra).select(pl.col(name).cast(dtype) for name, dtype in schema.items())
    lf.sink_parquet(dest, compression="zstd")
    if on_spark(lf):  # Spark's part files: readers order by the key
        return dest
    keys = [*blueprint.key, "source_row"]
    written = pl.scan_parquet(dest)
    if not (is_sorted_by(written, ["source_row"]) or is_sorted_by(written, keys)):
        unsorted = dest.with_name(dest.name + ".unsorted")
        dest.replace(unsorted)
        sink_sorted(pl.scan_parquet(unsorted), dest, keys)
        unsorted.unlink()
    return dest


def run_pipeline(  # noqa: PLR0913 - a source, a blueprint and the options the CLI offers
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
    model_from: str | None = None,
    engine: Literal["polars", "spark"] = "polars",
    spark: Any = None,
) -> RunResult:
    """Run one file through a blueprint: ingest, validate, features, preprocess, model, store, report.

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
    model_from
        Score the file with this completed run's saved preprocessing, feature statistics and
        model instead of fitting new ones (what :func:`tracer_kit.predict` does).
    engine
        ``"polars"`` (one machine, out of core) or ``"spark"``: the same checks and
        features run by Spark's executors; the processed rows are Parquet part files in
        ``<processed_dir>/<blueprint>/<run_id>/`` (README, "Spark"). ``path`` may then be
        any URI the cluster reads, ``table:NAME`` or a Spark DataFrame.
    spark
        The Spark session for ``engine="spark"`` (default: the active one, else ``local[2]``).

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
    source = path
    if not isinstance(path, (str, Path)):  # a Spark DataFrame
        path = "spark_dataframe"
    run = _prepare(path, blueprint, config, warehouse, output_dir, processed_dir, run_id, run_date)
    run.source = source
    if engine == "spark":
        _on_spark(run, spark, model_from)
    elif engine != "polars":
        msg = f"engine={engine!r}: use 'polars' or 'spark'"
        raise ConfigError(msg)
    run.trained = _trained(model_from, run)
    run.life.progress = progress
    handler = _JsonLines(run.space.run_reports(run.run_id) / "run.log", run.run_id)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        with run.life:
            _begin(run)
            with run.life.stage("ingest"):
                _ingest(run)
            with run.life.stage("validate"):
                _validate(run)
            if not run.quality.passed:
                _stop_at_gate(run, report=report)
            with run.life.stage("features"):
                _features(run)
            with run.life.stage("preprocess"):
                _preprocess(run)
            with run.life.stage("model"):
                _model(run)
            with run.life.stage("store"):
                _store(run)
            _completed(run, return_frame=return_frame)
            if report:
                with run.life.stage("report"):
                    _render_report(run.run_id, run.warehouse, run.space.reports, run.result)
                record_timings(run.warehouse, run.run_id, run.life.seconds)
            return _finish(run)
    finally:
        log.removeHandler(handler)
        handler.close()


@dataclass
class _Run:
    """What the stages of one in-process run share."""

    bp: Blueprint
    cfg: Config
    path: str | Path  # a file, or a database URL without credentials (str)
    run_id: str
    run_date: dt.date
    warehouse: str | Path
    space: Workspace
    outputs: RunOutputs
    params: dict[str, Any]
    life: RunLifecycle
    result: RunResult
    fields: dict[str, Any] = field(default_factory=dict)  # the runs-table fields to commit
    ing: Ingested | None = None
    q: QualityResult | None = None
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    rows_out: int = 0
    trained: TrainedRun | None = None  # the saved model a predict run applies
    model: ModelRecord | None = None
    spark: Any = None  # the Spark session when the Spark engine runs
    source: Any = None  # what the Spark engine reads: a path or URI, table:NAME, a DataFrame

    @property
    def quality(self) -> QualityResult:
        """The quality stage's result (after :func:`_validate`)."""
        if self.q is None:
            raise PipelineBugError("the quality stage has not run")
        return self.q

    def staged(self, key: str) -> Path:
        """Where output ``key`` sits in staging until the commit moves it into place."""
        final = str(self.outputs[key])
        return next(staged for staged, dest in self.moves if str(dest) == final)

    @property
    def staged_parquet(self) -> Path:
        """The processed rows before the commit moves them into place."""
        return self.space.run_staging(self.run_id) / f"{self.run_id}.parquet"


def _on_spark(run: _Run, spark: Any, model_from: str | None) -> None:
    """Switch a prepared run to the Spark engine.

    The processed rows become a folder of part files, ``<processed>/<blueprint>/<run_id>/``;
    the model matrix and the predictions are folders of part files too, under the names
    the polars engine gives their files. The preprocessor and the model are fitted on the
    driver from a bounded sample and saved as files, as on polars.
    """
    from tracer_kit.connections import is_database_url
    from tracer_kit.spark import spark_session
    from tracer_kit.spark.features import check_spark_blueprint
    from tracer_kit.spark.session import for_runs

    check_spark_blueprint(run.bp)
    if is_database_url(run.source):
        msg = (
            "database sources run on the polars engine; on Spark, read the table with "
            "spark.read.jdbc(...) and pass the DataFrame"
        )
        raise ConfigError(msg)
    if model_from is not None:
        msg = "scoring with a saved model (predict) runs on the polars engine only, for now"
        raise ConfigError(msg)
    run.spark = for_runs(spark if spark is not None else spark_session())
    if isinstance(run.source, str):  # a URI keeps its "//" (a Path would fold it)
        run.result.input_path = run.source
    run.outputs["parquet"] = str(Path(run.outputs["parquet"]).with_suffix(""))
    run.params["engine"] = {
        "name": "spark",
        "master": run.spark.conf.get("spark.master", None) if hasattr(run.spark, "conf") else None,
        "version": run.spark.version,
    }


def _run_outputs(space: Workspace, bp: Blueprint, run_id: str) -> RunOutputs:
    """Where every file of the run will be once committed (recorded when the run starts)."""
    final = space.processed_file(bp.name, run_id)
    outputs = RunOutputs(
        parquet=str(final),
        staging=str(space.run_staging(run_id).resolve()),  # (cleaned up from any folder)
        report=str(space.run_reports(run_id) / "report.html"),
        log=str(space.run_reports(run_id) / "run.log"),
        quarantine=str(run_quarantine_path(final)),  # (kept beside the rows when they commit)
    )
    for output in OUTPUTS.values():
        for key, suffix in output.files.items():
            outputs[key] = str(final.with_name(f"{run_id}{suffix}"))
    return outputs


def _prepare(
    path: str | Path,
    blueprint: str | Blueprint,
    config: Config | dict[str, Any] | str | Path | None,
    warehouse: str | Path,
    output_dir: str | Path,
    processed_dir: str | Path,
    run_id: str | None,
    run_date: dt.date | str | None,
) -> _Run:
    bp = get_blueprint(blueprint)
    cfg = load_config(config)
    run_id = check_run_id(run_id or new_run_id())
    if isinstance(run_date, str):
        run_date = dt.date.fromisoformat(run_date)
    run_date = run_date or cfg.run_date or dt.datetime.now(dt.UTC).date()
    space = Workspace.of(warehouse, processed_dir, output_dir)
    outputs = _run_outputs(space, bp, run_id)
    params: dict[str, Any] = {
        "config": config_to_jsonable(cfg),
        "run_date": run_date.isoformat(),
        "reference_date": cfg.reference_date.isoformat() if cfg.reference_date else None,
        "processed_dir": str(space.processed),
        "output_dir": str(output_dir),
    }
    path, dataset = _named_source(path, cfg)
    result = RunResult(
        run_id=run_id,
        blueprint=bp.name,
        dataset=dataset,
        state="IN_PROGRESS",
        input_path=str(path),
        params=params,
        outputs=outputs,
    )
    life = RunLifecycle(warehouse, run_id)
    return _Run(bp, cfg, path, run_id, run_date, warehouse, space, outputs, params, life, result)


def _named_source(source: str | Path, cfg: Config) -> tuple[str | Path, str]:
    """How the run names its source (a database URL without credentials) and its dataset."""
    from tracer_kit.connections import is_database_url, is_url, parse_database_url, redact

    dataset = cfg.dataset or dataset_name(source, table=cfg.table, query=cfg.query)
    if isinstance(source, str) and is_database_url(source):
        return parse_database_url(source).display(), dataset
    if isinstance(source, str) and is_url(source):
        return redact(source), dataset
    return Path(source), dataset


def _trained(model_from: str | None, run: _Run) -> TrainedRun | None:
    """The training run whose model scores this file (``model_from``), checked against the blueprint."""
    if model_from is None:
        return None
    trained = trained_run(model_from, run.warehouse)
    if trained.blueprint != run.bp.name:
        msg = f"run {model_from} trained a {trained.blueprint} model, not {run.bp.name}"
        raise ConfigError(msg)
    return trained


def _begin(run: _Run) -> None:
    open_warehouse(run.warehouse)
    record = {
        "run_id": run.run_id,
        "blueprint": run.bp.name,
        "dataset": run.result.dataset,
        "input_path": run.result.input_path,
        "params": run.params,
        "versions": package_versions(),
        "outputs": run.outputs.as_dict(),
    }
    run.life.start(record)
    log.info(
        "run started: %s on %s", run.bp.name, run.path, extra={"fields": {"input": str(run.path)}}
    )


def _ingest(run: _Run) -> None:
    staging = run.space.run_staging(run.run_id)
    if run.spark is not None:
        from tracer_kit.spark import read_spark

        cfg = run.cfg
        run.ing = read_spark(
            run.spark, run.source, format=cfg.format, delimiter=cfg.delimiter, encoding=cfg.encoding
        )
    else:
        source = run.source if isinstance(run.path, str) else run.path  # (a URL)
        run.ing = read_file(source, run.cfg, staging_dir=staging, blueprint=run.bp)
    for warning in run.ing.info.warnings:
        log.warning(warning)
    if run.ing.info.pages:  # an API's pages: where each source_row came from
        run.params["pages"] = list(run.ing.info.pages)
    run.result.input_sha256 = run.ing.info.sha256
    run.life.known["input_sha256"] = run.ing.info.sha256


def _validate(run: _Run) -> None:
    ing = run.ing
    assert ing is not None
    staging = run.space.run_staging(run.run_id)
    # customer_churn's snapshot form when the file has tenure and no account dates
    run.bp = blueprint_form(run.bp, ing.info.columns, config_column_map(run.cfg, run.bp))
    q = assess_ingested(ing, run.bp, config=run.cfg, run_date=run.run_date, work_dir=staging)
    run.q = q
    run.params.update(
        reference_date=q.reference_date.isoformat() if q.reference_date else None,
        column_map=q.column_map,
        date_formats=q.date_formats,
        transforms=q.transform_counts,
        personal=q.personal,
        pseudonymise_key_fingerprint=_pseudonymise_fingerprint(run.cfg, q.transform_counts),
        personal_columns=[
            next((src for src, dst in q.column_map.items() if dst == name), name)
            for name in q.personal
        ],
    )
    run.result = run.result.model_copy(
        update={
            "rows_in": q.rows_in,
            "rows_valid": q.rows_valid,
            "rows_quarantined": q.rows_quarantined,
            "quality_score": q.score,
            "score_parts": q.score_parts,
            "issues": list(q.issues),
            "params": run.params,
        }
    )
    run.fields = {
        "run_id": run.run_id,
        "input_path": run.result.input_path,
        "input_sha256": ing.info.sha256,
        "read_options": {**ing.info.read_options(), "hash": ing.info.read_options_hash()},
        "read_options_hash": ing.info.read_options_hash(),
        "params": run.params,
        "rows_in": q.rows_in,
        "rows_valid": q.rows_valid,
        "rows_quarantined": q.rows_quarantined,
        "quality_score": q.score,
        "score_parts": q.score_parts,
        "outputs": run.outputs.as_dict(),
    }


def _pseudonymise_key(cfg: Config) -> bytes | None:
    secret = cfg.pseudonymise_key.get_secret_value() if cfg.pseudonymise_key else None
    secret = secret or os.environ.get(PSEUDONYMISE_KEY_ENV)
    return secret.encode() if secret else None


def _pseudonymise_fingerprint(cfg: Config, counts: list[dict[str, Any]]) -> str | None:
    """Which key pseudonymised the run's values (a fingerprint, never the key); None if none did."""
    if not any(c["transform"] == "pseudonymise" for c in counts):
        return None
    key = _pseudonymise_key(cfg)
    return key_fingerprint(key, "pseudonymise") if key else None


def _same_pseudonymise_key(run_id: str, trained: dict[str, Any], cfg: Config) -> None:
    """Refuse to score with another pseudonymisation key than the training run's."""
    recorded = trained.get("pseudonymise_key_fingerprint")
    key = _pseudonymise_key(cfg)
    if recorded and key and key_fingerprint(key, "pseudonymise") != recorded:
        msg = (
            f"the pseudonymisation key set is not the one run {run_id} was trained with "
            f"(fingerprint {key_fingerprint(key, 'pseudonymise')}, the run's {recorded}): the "
            f"hashed identifiers would not match; set {PSEUDONYMISE_KEY_ENV} to the training key"
        )
        raise ConfigError(msg)


def _protect_personal(run: _Run) -> None:
    """Encrypt (or pseudonymise) the personal values of the staged bronze and quarantine."""
    q = run.quality
    columns = run.params.get("personal_columns") or []
    if not columns:
        return
    key = encryption_key(run.cfg.encryption_key)
    token_key = _pseudonymise_key(run.cfg) or os.urandom(32)
    files = {
        "bronze": q.bronze_path,
        "rejects": q.bronze_rejects_path,
        "quarantine": q.quarantine_path,
    }
    mode = protect_run_files(files, columns, key, token_key)
    at_rest: dict[str, Any] = {"mode": mode, "columns": columns}
    if key is not None:
        at_rest["key_fingerprint"] = key_fingerprint(key, "encryption")
        at_rest["key_reference"] = run.cfg.encryption_key
    run.params["personal_at_rest"] = at_rest


def _commit(run: _Run, profiles: pl.DataFrame | None, *, processed: bool) -> None:
    """The one commit path: the run's end state, bronze, quarantine, issues and files at once."""
    q = run.quality
    _protect_personal(run)
    run.fields["params"] = run.params
    final = Path(run.outputs["parquet"])
    commit = RunCommit(
        blueprint=run.bp,
        run=run.fields,
        bronze=BronzeFiles(
            q.bronze_path, q.bronze_rejects_path, q.bronze_columns, run.params.get("pages")
        ),
        bronze_dir=run.space.bronze,
        quarantine=q.quarantine_path,
        issues=run.result.issues,
        stage_seconds=run.life.seconds,
        profiles=profiles,
        processed=(run.staged_parquet, final) if processed else None,
        files=run.moves if processed else (),
        model=run.model if processed else None,
    )
    commit_run(run.warehouse, commit)
    run.life.committed()  # the commit point: a later report failure leaves the run as recorded
    shutil.rmtree(run.space.run_staging(run.run_id), ignore_errors=True)


def _stop_at_gate(run: _Run, *, report: bool) -> None:
    """Commit the failed run (bronze, quarantine, issues), render its report, raise."""
    q = run.quality
    gate_msg = f"{run.path}: quality gate failed: " + "; ".join(q.gate_failures)
    run.fields.update(state="FAILED", rows_out=0, error=gate_msg)
    _commit(run, None, processed=False)
    run.result = run.result.model_copy(
        update={"state": "FAILED", "error": gate_msg, "stage_seconds": run.life.seconds}
    )
    log.error(gate_msg)
    if report:
        _render_report(run.run_id, run.warehouse, run.space.reports, run.result)
    try:
        raise_for_gate(q, run.path)
    except QualityGateError as exc:
        exc.result = run.result
        raise


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


def _features(run: _Run) -> None:
    q = run.quality
    ctx = feature_context(q, run.cfg)
    with _user_code(run.bp):
        if run.bp.feature_statistics is not None:
            stats = run.trained.statistics if run.trained else None
            stats = stats or run.bp.feature_statistics(q.valid_lazy(), ctx)
            ctx = replace(ctx, statistics=stats)
            run.params["feature_statistics"] = stats
        build_processed(q, run.bp, run.staged_parquet, ctx)
    processed = _processed(run)
    run.rows_out, nulls = _final_check(processed, run.bp, q.rows_valid)
    run.result.issues += mostly_null_issues(nulls, run.rows_out, run.bp, q.valid_lazy(), ctx)
    for issue in run.result.issues[len(q.issues) :]:
        log.warning(issue["message"])


def _processed(run: _Run) -> Any:
    """The staged processed rows: a scan of the file, or on Spark of its part files."""
    if run.spark is None:
        return pl.scan_parquet(run.staged_parquet)
    from tracer_kit.spark.frame import PartitionFrame, spark_path

    return PartitionFrame(run.spark.read.parquet(spark_path(run.staged_parquet)))


def _profiled_rows(run: _Run) -> pl.LazyFrame:
    """The rows the column profiles are computed on: all of them, or on Spark a bounded sample.

    Spark sends at most ``settings.model_fit_rows`` rows (100,000; a seeded sample) to the
    driver: a profile's shares and quantiles, not its exact counts, on big tables.
    """
    if run.spark is None:
        return pl.scan_parquet(run.staged_parquet)
    df = _processed(run).spark()
    limit = settings.model_fit_rows
    if run.rows_out > limit:
        df = df.sample(fraction=min(1.0, 1.05 * limit / run.rows_out), seed=0).limit(limit)
    return pl.from_arrow(df.toArrow()).lazy()  # type: ignore[union-attr]


def _preprocess(run: _Run) -> None:
    """Fit the preprocessor (or load the training run's), then write the preprocess outputs."""
    # scikit-learn takes seconds to import: only a run that gets this far pays for it
    from tracer_kit.preprocess import fit_preprocessor, read_preprocessor

    processed = _processed(run)
    ctx = OutputContext(run.run_id, run.bp, run.cfg, processed)
    ctx.fitted["preprocessor"] = (
        read_preprocessor(run.trained.preprocessor)
        if run.trained
        else fit_preprocessor(processed, run.bp, run.cfg.preprocess)
    )
    _write_outputs(run, ctx, "preprocess")


def _write_outputs(run: _Run, ctx: OutputContext, stage: str) -> None:
    """Write a stage's registered outputs into staging; a file an output left out gets no path."""
    staging = run.space.run_staging(run.run_id)
    for output in OUTPUTS.values():
        if output.stage != stage:
            continue
        staged = {key: staging / Path(run.outputs[key]).name for key in output.files}
        output.write(ctx, staged)
        for key, path in staged.items():
            if path.exists():
                run.moves.append((path, Path(run.outputs[key])))
            else:
                run.outputs[key] = None
    run.params.update(ctx.params)


def _model(run: _Run) -> None:
    """Fit the blueprint's model (or apply the training run's): predictions and model file staged."""
    ctx = OutputContext(run.run_id, run.bp, run.cfg, _processed(run))
    if run.bp.name in MODELS:
        outcome = _model_outcome(run)
        ctx.fitted["model"] = outcome
        run.params["model"] = outcome.summary
        if outcome.saved is not None:
            run.params["model"]["training_rows"] = outcome.training_rows
        for note in outcome.notes:
            log.warning(note)
        for issue in outcome.issues:
            log.warning(issue.message)
        run.result.issues += outcome.issues
    _write_outputs(run, ctx, "model")
    _record_model(run)


def _model_outcome(run: _Run) -> ModelOutcome:
    processed = _processed(run)
    cfg = run.cfg.model
    if run.trained is not None:
        saved = read_model(run.trained.predictor)
        outcome = apply_model(saved, processed, run.bp.name, cfg)
        outcome.summary = {"model": "saved", "trained_by": run.trained.run_id}
        return outcome
    if not cfg.enabled:
        return ModelOutcome({"model": None, "why": "the model stage is turned off (--no-model)"})
    outcome = fit_model(processed, run.bp.name, cfg)
    assert outcome is not None
    return outcome


def _record_model(run: _Run) -> None:
    """What the commit records about the run's model (``models``, ``prediction_files``)."""
    summary = run.params.get("model") or {}
    predictions = run.outputs.get("predictions")
    pair = (run.staged("predictions"), Path(predictions)) if predictions else None
    if run.trained is not None:
        run.model = ModelRecord(run.trained.run_id, pair)
        run.params["trained_by"] = run.trained.run_id
        if pair is not None:  # (the Parquet footer holds the count)
            summary["rows"] = pl.scan_parquet(pair[0]).select(pl.len()).collect().item()
        return
    predictor = run.outputs.get("predictor")
    if predictor is None:
        return
    metrics = {k: summary[k] for k in ("metrics", "baseline", "scores", "totals") if k in summary}
    run.model = ModelRecord(
        model_run_id=run.run_id,
        predictions=pair,
        kind=MODELS[run.bp.name].kind,
        parameters={"model": summary.get("model"), **run.cfg.model.model_dump()},
        metrics=metrics,
        training_rows=summary.get("training_rows", run.rows_out),
        model_sha256=file_sha256(run.staged("predictor")),
    )


def _store(run: _Run) -> None:
    processed = _profiled_rows(run)
    columns = [c for c in processed.collect_schema().names() if c != "extras"]
    profiles = hide_personal(column_profiles(processed, columns), run.quality.personal)
    # a folder of part files (Spark) has no single SHA-256; its rows have input_sha256's digest
    staged = run.staged_parquet
    run.outputs["parquet_sha256"] = file_sha256(staged) if staged.is_file() else None
    if run.outputs.get("model"):
        matrix = run.staged("model")
        run.outputs["model_sha256"] = file_sha256(matrix) if matrix.is_file() else None
    run.fields.update(
        state="COMPLETED", rows_out=run.rows_out, error=None, outputs=run.outputs.as_dict()
    )
    _commit(run, profiles, processed=True)


def _completed(run: _Run, *, return_frame: bool) -> None:
    final = Path(run.outputs["parquet"])
    run.result = run.result.model_copy(
        update={
            "state": "COMPLETED",
            "rows_out": run.rows_out,
            "features_created": list(run.bp.feature_names),
            "outputs": run.outputs.model_copy(),
            "stage_seconds": run.life.seconds,
            "frame": pl.read_parquet(final) if return_frame and final.is_file() else None,
        }
    )
    record_timings(
        run.warehouse, run.run_id, run.life.seconds
    )  # the store stage ended after its commit


def _finish(run: _Run) -> RunResult:
    result = run.result
    result.stage_seconds = dict(run.life.seconds)
    counts = ("rows_in", "rows_valid", "rows_quarantined", "rows_out", "quality_score")
    log.info(
        "run completed in %.2f s",
        sum(run.life.seconds.values()),
        extra={"fields": {"state": "COMPLETED", **{k: getattr(result, k) for k in counts}}},
    )
    return result


def _render_report(
    run_id: str, warehouse: str | Path, output_dir: str | Path, result: RunResult
) -> None:
    from tracer_kit.report import quality_report

    quality_report(run_id, warehouse=warehouse, output_dir=output_dir, frame=result.frame)


def predict(  # noqa: PLR0913 - a run, a source and the options run_pipeline takes
    run_id: str,
    source: str | Path,
    *,
    out: str | Path | None = None,
    config: Config | dict[str, Any] | str | Path | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    output_dir: str | Path = DEFAULT_REPORTS,
    processed_dir: str | Path = DEFAULT_PROCESSED,
    progress: ProgressFn | None = None,
    report: bool = True,
    force: bool = False,
    raw_cells: bool = False,
) -> RunResult:
    """Score a new file with a completed run's saved model, recorded as a run of its own.

    The file is validated with the training run's blueprint and config (quarantine and
    quality gate as usual), its features use the training run's file-wide statistics and
    reference date (so a row scores exactly as it did inside the training file), and the
    saved preprocessor and model are applied without refitting. ``params.trained_by`` names
    the training run. Rows that fail validation are quarantined, not scored.

    Parameters
    ----------
    run_id
        The training run (``tracer runs`` lists them); it must have saved a model.
    source
        The new file.
    out
        Also write the predictions here (``.csv`` or ``.parquet``); never over an existing
        file unless ``force``, and in CSV with formula-like cells neutralised unless
        ``raw_cells`` (:func:`tracer_kit.write_table`).
    config
        Overrides of the training run's config (e.g. ``{"reference_date": "2026-12-01"}``
        for data observed later).

    Raises
    ------
    QualityGateError
        When the new file fails the quality gate (nothing is scored).
    TracerError
        For an unknown run, a run without a saved model, or an unsupported ``out`` type.
    """
    with reading_run(run_id, warehouse=warehouse):  # (not deleted while its model is read)
        return _predict(
            run_id,
            source,
            out=out,
            config=config,
            warehouse=warehouse,
            output_dir=output_dir,
            processed_dir=processed_dir,
            progress=progress,
            report=report,
            force=force,
            raw_cells=raw_cells,
        )


def _predict(  # noqa: PLR0913 - predict's arguments, passed on
    run_id: str,
    source: str | Path,
    *,
    out: str | Path | None,
    config: Config | dict[str, Any] | str | Path | None,
    warehouse: str | Path,
    output_dir: str | Path,
    processed_dir: str | Path,
    progress: ProgressFn | None,
    report: bool,
    force: bool,
    raw_cells: bool,
) -> RunResult:
    trained = trained_run(run_id, warehouse)
    suffix = Path(out).suffix.lower() if out else None
    if suffix not in (None, ".csv", ".parquet"):
        raise ConfigError(f"--out {out}: predictions are written as .csv or .parquet")
    if out:
        check_destination(out, force=force, warehouse=warehouse)  # (before any work)
    base = {k: v for k, v in trained.config.items() if k not in ("dataset", "run_date")}
    base["reference_date"] = base.get("reference_date") or trained.reference_date
    given = load_config(config)
    overrides = given.model_dump(exclude_unset=True)
    # the training run's renames apply to the columns the new file has (it has no label),
    # with the caller's own renames added on top
    overrides["column_map"] = {**base.get("column_map", {}), **given.column_map}
    cfg = load_config({**base, **overrides, "map_present_only": True})
    if given.pseudonymise_key is not None:  # (a key given in Python: model_dump leaves it out)
        cfg = cfg.model_copy(update={"pseudonymise_key": given.pseudonymise_key})
    _same_pseudonymise_key(run_id, run_row(run_id, warehouse=warehouse)["params"], cfg)
    result = run_pipeline(
        source,
        trained.blueprint,
        config=cfg,
        warehouse=warehouse,
        output_dir=output_dir,
        processed_dir=processed_dir,
        progress=progress,
        report=report,
        model_from=run_id,
    )
    if out and result.outputs.predictions:
        rows = pl.read_parquet(result.outputs.predictions)
        write_table(rows, out, force=force, raw_cells=raw_cells, warehouse=warehouse)
    return result
