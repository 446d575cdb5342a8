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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from tracer_kit import stages
from tracer_kit.blueprints import (
    Blueprint,
    get_blueprint,
)
from tracer_kit.config import Config, config_to_jsonable, load_config
from tracer_kit.connections import is_database_url, is_url, parse_database_url, redact
from tracer_kit.engine import POLARS, Engine, resolve_engine
from tracer_kit.errors import (
    ConfigError,
    QualityGateError,
)
from tracer_kit.ingest import Ingested, file_sha256
from tracer_kit.model import model_task
from tracer_kit.outputs import OUTPUTS
from tracer_kit.personal import (
    PSEUDONYMISE_KEY_ENV,
    encryption_key,
    key_fingerprint,
    protect_run_files,
)
from tracer_kit.profiling import column_profiles, hide_personal
from tracer_kit.quality import QualityResult, raise_for_gate
from tracer_kit.record import (
    EngineRecord,
    ModelSummary,
    PersonalAtRest,
    RunOutputs,
    RunRecord,
    RunResult,
)
from tracer_kit.report import quality_report
from tracer_kit.run import STAGES, ProgressFn, RunLifecycle
from tracer_kit.settings import settings
from tracer_kit.trained import TrainedRun, trained_run
from tracer_kit.warehouse import (
    DEFAULT_WAREHOUSE,
    BronzeFiles,
    ModelRecord,
    RunCommit,
    check_run_id,
    commit_run,
    dataset_name,
    holding,
    new_run_id,
    open_warehouse,
    reading_run,
    record_timings,
    reference_values,
    run_quarantine_path,
)
from tracer_kit.workspace import DEFAULT_PROCESSED, DEFAULT_REPORTS, Workspace
from tracer_kit.writing import check_destination, write_table

__all__ = [
    "RunResult",
    "STAGES",
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
    engine: str | Engine = "polars",
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
        ``"polars"`` (one machine, out of core), ``"spark"`` or an engine from
        :func:`resolve_engine`: on Spark the same checks and features run by Spark's
        executors; the processed rows are Parquet part files in
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
    chosen = resolve_engine(engine, session=spark)  # (a bad name stops before any run)
    source = path
    if not isinstance(path, (str, Path)):  # a Spark DataFrame
        path = "spark_dataframe"
    run = _prepare(path, blueprint, config, warehouse, output_dir, processed_dir, run_id, run_date)
    run.source = source
    _on_engine(run, chosen, model_from)
    run.trained = _trained(model_from, run)
    run.life.progress = progress
    handler = _JsonLines(run.space.run_reports(run.run_id) / "run.log", run.run_id)
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        with run.life:
            return _run_stages(run, report=report, return_frame=return_frame)
    finally:
        log.removeHandler(handler)
        handler.close()


def _run_stages(run: _Run, *, report: bool, return_frame: bool) -> RunResult:
    """The stages in order, each given what it needs; their values recorded on the run."""
    _begin(run)
    staging = run.space.run_staging(run.run_id)
    with run.life.stage("ingest"):
        ing = stages.ingest(
            run.source, run.cfg, staging=staging, blueprint=run.bp, engine=run.engine
        )
        _ingested(run, ing)
    with run.life.stage("validate"):
        checked = stages.check(
            ing,
            run.bp,
            run.cfg,
            run_date=run.run_date,
            staging=staging,
            references=_references(run.bp, run.warehouse),
        )
        _checked(run, ing, checked)
    if not checked.quality.passed:
        _stop_at_gate(run, checked.quality, report=report)
    with run.life.stage("features"):
        featured = stages.featurize(
            checked,
            run.cfg,
            dest=run.staged_parquet,
            statistics=run.trained.statistics if run.trained else None,
        )
        _featured(run, featured)
    processed = run.engine.scan(featured.processed)
    finals = run.outputs.as_dict()
    where = {"run_id": run.run_id, "staging": staging, "finals": finals, "trained": run.trained}
    with run.life.stage("preprocess"):
        prepared = stages.prepare(
            processed, run.bp, run.cfg.preprocess, rows=featured.rows, **where
        )
        _written(run, prepared.written)
    with run.life.stage("model"):
        modelled = stages.fit_or_apply_model(
            processed, run.bp, run.cfg.model, recipe=prepared.recipe, **where
        )
        _modelled(run, modelled, featured.rows)
    with contextlib.ExitStack() as tail:  # the warehouse open once from the commit to the end
        with run.life.stage("store"):
            _store(run, checked.quality, featured, tail, sample=prepared.sample)
        _completed(run, featured, return_frame=return_frame)
        if report:
            with run.life.stage("report"):
                _render_report(run.run_id, run.warehouse, run.space.reports, run.result)
            record_timings(run.warehouse, run.run_id, run.life.seconds)
    return _finish(run)


@dataclass
class _Run:
    """One run as the pipeline sees it: who and where it is, what it records and commits.

    The stages never see it (:mod:`tracer_kit.stages`): the pipeline hands each stage the
    values and options it needs and records what it returns here.
    """

    bp: Blueprint
    cfg: Config
    path: str | Path  # a file, or a database URL without credentials (str)
    run_id: str
    run_date: dt.date
    warehouse: str | Path
    space: Workspace
    outputs: RunOutputs
    record: RunRecord
    life: RunLifecycle
    result: RunResult
    fields: dict[str, Any] = field(default_factory=dict)  # the runs-table fields to commit
    moves: list[tuple[Path, Path]] = field(default_factory=list)  # staged -> final, at the commit
    trained: TrainedRun | None = None  # the saved model a predict run applies
    model: ModelRecord | None = None
    engine: Engine = POLARS  # the engine that runs the stages (resolved once)
    source: Any = None  # what the engine reads: a path or URL, a URI, table:NAME, a DataFrame

    def staged(self, key: str) -> Path:
        """Where output ``key`` sits in staging until the commit moves it into place."""
        final = str(self.outputs[key])
        return next(staged for staged, dest in self.moves if str(dest) == final)

    @property
    def staged_parquet(self) -> Path:
        """The processed rows before the commit moves them into place."""
        return self.space.run_staging(self.run_id) / f"{self.run_id}.parquet"


def _on_engine(run: _Run, engine: Engine, model_from: str | None) -> None:
    """Put a prepared run on its engine, which checks first that it can run it.

    On Spark the processed rows become a folder of part files,
    ``<processed>/<blueprint>/<run_id>/``; the model matrix and the predictions are folders
    of part files too, under the names the polars engine gives their files. The
    preprocessor and the model are fitted on the driver from a bounded sample and saved as
    files, as on polars.
    """
    engine.check_run(run.bp, run.source, predicting=model_from is not None)
    run.engine = engine
    run.outputs["parquet"] = engine.output_path(run.outputs["parquet"])
    if engine.reads_uris and isinstance(run.source, str):  # a URI keeps its "//"
        run.result.input_path = run.source
    described = engine.describe()
    if described is not None:
        run.record.engine = EngineRecord(**described)


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
    record = RunRecord(
        config=config_to_jsonable(cfg),
        run_date=run_date,
        reference_date=cfg.reference_date,
        processed_dir=str(space.processed),
        output_dir=str(output_dir),
    )
    path, dataset = _named_source(path, cfg)
    result = RunResult(
        run_id=run_id,
        blueprint=bp.name,
        dataset=dataset,
        state="IN_PROGRESS",
        input_path=str(path),
        record=record,
        outputs=outputs,
    )
    life = RunLifecycle(warehouse, run_id)
    return _Run(bp, cfg, path, run_id, run_date, warehouse, space, outputs, record, life, result)


def _named_source(source: str | Path, cfg: Config) -> tuple[str | Path, str]:
    """How the run names its source (a database URL without credentials) and its dataset."""
    dataset = cfg.output.dataset or dataset_name(source, table=cfg.read.table, query=cfg.read.query)
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
    with holding(run.warehouse):
        open_warehouse(run.warehouse)
        _started(run)


def _started(run: _Run) -> None:
    record = {
        "run_id": run.run_id,
        "blueprint": run.bp.name,
        "dataset": run.result.dataset,
        "input_path": run.result.input_path,
        "params": run.record,
        "versions": package_versions(),
        "outputs": run.outputs.as_dict(),
    }
    run.life.start(record)
    log.info(
        "run started: %s on %s", run.bp.name, run.path, extra={"fields": {"input": str(run.path)}}
    )


def _ingested(run: _Run, ing: Ingested) -> None:
    """Record what ingest learned: its warnings, an API's pages, the source's fingerprint."""
    for warning in ing.info.warnings:
        log.warning(warning)
    if ing.info.pages:  # an API's pages: where each source_row came from
        run.record.pages = list(ing.info.pages)
    run.result.input_sha256 = ing.info.sha256
    run.life.known["input_sha256"] = ing.info.sha256


def _references(blueprint: Blueprint, warehouse: Path) -> dict[str, pl.Series]:
    """Per field with ``references``: the values of the referenced dataset's latest run."""
    return {
        f.name: reference_values(f.references, warehouse=warehouse)
        for f in blueprint.fields
        if f.references is not None
    }


def _checked(run: _Run, ing: Ingested, checked: stages.Checked) -> None:
    """Record the check stage's facts, counts and issues (the commit writes them)."""
    q = checked.quality
    run.bp = checked.blueprint  # (the form the file was checked against)
    run.record.update(
        **checked.facts,
        pseudonymise_key_fingerprint=_pseudonymise_fingerprint(run.cfg, q.transform_counts),
    )
    run.result = run.result.model_copy(
        update={
            "rows_in": q.rows_in,
            "rows_valid": q.rows_valid,
            "rows_quarantined": q.rows_quarantined,
            "quality_score": q.score,
            "score_parts": q.score_parts,
            "issues": list(q.issues),
            "record": run.record,
        }
    )
    run.fields = {
        "run_id": run.run_id,
        "input_path": run.result.input_path,
        "input_sha256": ing.info.sha256,
        "read_options": {**ing.info.read_options(), "hash": ing.info.read_options_hash()},
        "read_options_hash": ing.info.read_options_hash(),
        "params": run.record,
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


def _same_pseudonymise_key(run_id: str, trained: RunRecord, cfg: Config) -> None:
    """Refuse to score with another pseudonymisation key than the training run's."""
    recorded = trained.pseudonymise_key_fingerprint
    key = _pseudonymise_key(cfg)
    if recorded and key and key_fingerprint(key, "pseudonymise") != recorded:
        msg = (
            f"the pseudonymisation key set is not the one run {run_id} was trained with "
            f"(fingerprint {key_fingerprint(key, 'pseudonymise')}, the run's {recorded}): the "
            f"hashed identifiers would not match; set {PSEUDONYMISE_KEY_ENV} to the training key"
        )
        raise ConfigError(msg)


def _protect_personal(run: _Run, q: QualityResult) -> None:
    """Encrypt (or pseudonymise) the personal values of the staged bronze and quarantine."""
    columns = run.record.personal_columns
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
    at_rest = PersonalAtRest(mode=mode, columns=columns)
    if key is not None:
        at_rest.key_fingerprint = key_fingerprint(key, "encryption")
        at_rest.key_reference = run.cfg.encryption_key
    run.record.personal_at_rest = at_rest


def _pages(record: RunRecord) -> list[dict[str, Any]] | None:
    """An API source's pages as bronze keeps them (None for other sources)."""
    return None if record.pages is None else [p.model_dump() for p in record.pages]


def _commit(run: _Run, q: QualityResult, profiles: pl.DataFrame | None, *, processed: bool) -> None:
    """The one commit path: the run's end state, bronze, quarantine, issues and files at once."""
    _protect_personal(run, q)
    run.fields["params"] = run.record
    final = Path(run.outputs["parquet"])
    commit = RunCommit(
        blueprint=run.bp,
        run=run.fields,
        bronze=BronzeFiles(
            q.bronze_path, q.bronze_rejects_path, q.bronze_columns, _pages(run.record)
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


def _stop_at_gate(run: _Run, q: QualityResult, *, report: bool) -> None:
    """Commit the failed run (bronze, quarantine, issues), render its report, raise."""
    gate_msg = f"{run.path}: quality gate failed: " + "; ".join(q.gate_failures)
    run.fields.update(state="FAILED", rows_out=0, error=gate_msg)
    _commit(run, q, None, processed=False)
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


def _featured(run: _Run, featured: stages.Featured) -> None:
    """Record the features' statistics and issues."""
    if featured.statistics is not None:
        run.record.feature_statistics = featured.statistics
    run.result.issues += list(featured.issues)
    for issue in featured.issues:
        log.warning(issue.message)


def _written(run: _Run, written: stages.Written) -> None:
    """Files a stage staged move into place at the commit; a key left out has no path."""
    run.moves += list(written.files)
    for key in written.absent:
        run.outputs[key] = None
    run.record.update(**written.notes)


def _modelled(run: _Run, modelled: stages.Modelled, rows_out: int) -> None:
    """Record the model's summary and issues, and what the commit keeps about the model."""
    if modelled.summary is not None:
        run.record.model = modelled.summary
        for note in modelled.notes:
            log.warning(note)
        run.result.issues += list(modelled.issues)
    _written(run, modelled.written)
    _record_model(run, rows_out)


def _profiled_rows(run: _Run, featured: stages.Featured) -> pl.LazyFrame:
    """The rows the column profiles are computed on: all of them, or on Spark a bounded sample.

    Spark sends at most ``settings.model_fit_rows`` rows (100,000; a seeded sample) to the
    driver: a profile's shares and quantiles, not its exact counts, on big tables.
    """
    rows = run.engine.driver_rows(featured.processed, featured.rows, settings.model_fit_rows)
    profiled = rows.select(pl.len()).collect().item()
    if profiled < featured.rows:
        run.record.profiled_rows = profiled
    return rows


def _task_kind(blueprint: Blueprint) -> str | None:
    task = model_task(blueprint)
    return task.kind if task is not None else None


def _record_model(run: _Run, rows_out: int) -> None:
    """What the commit records about the run's model (``models``, ``prediction_files``)."""
    summary = run.record.model or ModelSummary()
    predictions = run.outputs.get("predictions")
    pair = (run.staged("predictions"), Path(predictions)) if predictions else None
    if run.trained is not None:
        run.model = ModelRecord(run.trained.run_id, pair)
        run.record.trained_by = run.trained.run_id
        if pair is not None:  # (the Parquet footer holds the count)
            summary.rows = run.engine.count_rows(run.engine.scan(pair[0]))
        return
    predictor = run.outputs.get("predictor")
    if predictor is None:
        return
    told = summary.model_dump(exclude_unset=True)
    metrics = {k: told[k] for k in ("metrics", "baseline", "scores", "totals") if k in told}
    run.model = ModelRecord(
        model_run_id=run.run_id,
        predictions=pair,
        kind=_task_kind(run.bp),
        parameters={"model": summary.model, **run.cfg.model.model_dump()},
        metrics=metrics,
        training_rows=rows_out if summary.training_rows is None else summary.training_rows,
        model_sha256=file_sha256(run.staged("predictor")),
    )


def _store(
    run: _Run,
    q: QualityResult,
    featured: stages.Featured,
    tail: contextlib.ExitStack,
    *,
    sample: pl.DataFrame | None = None,
) -> None:
    """Profile the processed rows and commit the run with all its files.

    The warehouse is opened for the commit and kept open in ``tail`` (the report and the
    timings that follow reuse the connection), not while the rows are profiled. ``sample``:
    the rows the preprocessor was fitted on (the profiles' medians and histograms read them).
    """
    processed = _profiled_rows(run, featured)
    columns = [c for c in processed.collect_schema().names() if c != "extras"]
    profiles = hide_personal(column_profiles(processed, columns, sample=sample), q.personal)
    # a folder of part files (Spark) has no single SHA-256; its rows have input_sha256's digest
    staged = run.staged_parquet
    run.outputs["parquet_sha256"] = file_sha256(staged) if staged.is_file() else None
    if run.outputs.get("model"):
        matrix = run.staged("model")
        run.outputs["model_sha256"] = file_sha256(matrix) if matrix.is_file() else None
    run.fields.update(
        state="COMPLETED", rows_out=featured.rows, error=None, outputs=run.outputs.as_dict()
    )
    tail.enter_context(holding(run.warehouse))
    _commit(run, q, profiles, processed=True)


def _completed(run: _Run, featured: stages.Featured, *, return_frame: bool) -> None:
    final = Path(run.outputs["parquet"])
    run.result = run.result.model_copy(
        update={
            "state": "COMPLETED",
            "rows_out": featured.rows,
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
    prediction_run_id: str | None = None,
    engine: str | Engine = "polars",
    spark: Any = None,
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
    prediction_run_id
        Assign the scoring run's id (the server answers with it before the run starts).
    engine, spark
        As in :func:`run_pipeline`: with ``engine="spark"`` the executors validate the new
        rows, build their features with the training run's statistics and apply the saved
        preprocessor and model batch by batch; the predictions are part files.

    Raises
    ------
    QualityGateError
        When the new file fails the quality gate (nothing is scored).
    TracerError
        For an unknown run, a run without a saved model, or an unsupported ``out`` type.
    """
    chosen = resolve_engine(engine, session=spark)  # (a bad name stops before any work)
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
            prediction_run_id=prediction_run_id,
            engine=chosen,
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
    prediction_run_id: str | None,
    engine: Engine,
) -> RunResult:
    trained = trained_run(run_id, warehouse)
    suffix = Path(out).suffix.lower() if out else None
    if suffix not in (None, ".csv", ".parquet"):
        raise ConfigError(f"--out {out}: predictions are written as .csv or .parquet")
    if out:
        check_destination(out, force=force, warehouse=warehouse)  # (before any work)
    training = load_config(trained.config).model_dump(mode="json")  # (an older record's too)
    base = {k: v for k, v in training.items() if k != "run_date"}
    base["output"]["dataset"] = None  # (named after the new file)
    base["reference_date"] = base.get("reference_date") or trained.reference_date
    given = load_config(config)
    overrides = given.model_dump(exclude_unset=True)
    # the training run's renames apply to the columns the new file has (it has no label),
    # with the caller's own renames added on top
    quality = overrides.setdefault("quality", {})
    quality["column_map"] = {**base["quality"]["column_map"], **given.quality.column_map}
    merged = {
        k: {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        for k, v in overrides.items()
    }
    merged["quality"]["map_present_only"] = True
    cfg = load_config({**base, **merged})
    if given.pseudonymise_key is not None:  # (a key given in Python: model_dump leaves it out)
        cfg = cfg.model_copy(update={"pseudonymise_key": given.pseudonymise_key})
    _same_pseudonymise_key(run_id, trained.record, cfg)
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
        run_id=prediction_run_id,
        engine=engine,
    )
    if out and result.outputs.predictions:
        rows = engine.read_small(Path(result.outputs.predictions))
        write_table(rows, out, force=force, raw_cells=raw_cells, warehouse=warehouse)
    return result
