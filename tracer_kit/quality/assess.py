"""The quality stage: type the rows, walk the check registry, quarantine, score and gate.

:func:`assess` is the whole stage on a frame of text columns; :func:`validate`,
:func:`assess_ingested`, :func:`check_compatible` and :func:`read_file` are its entry
points from a file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from tracer_kit.blueprints import Blueprint, RuleContext, blueprint_form, get_blueprint
from tracer_kit.config import Config, Thresholds, load_config, validation_message
from tracer_kit.engine import engine_of, fit_rows, materialize, rows_with_source_row
from tracer_kit.errors import BlueprintError, PipelineBugError
from tracer_kit.heavy import preload_pandera
from tracer_kit.ingest import REJECT_SCHEMA, Ingested, ReadContext, read_source
from tracer_kit.quality import transforms as field_transforms
from tracer_kit.quality.casting import Typed, cast_fields, clean_columns, dirty_counts
from tracer_kit.quality.checks import (
    Check,
    Examples,
    IssueContext,
    RowContext,
    failures_of,
    reasons_of,
    run_checks,
)
from tracer_kit.quality.matching import config_column_map, fits_blueprint, match_columns
from tracer_kit.quality.names import Aggregates, Scratch
from tracer_kit.quality.result import QUARANTINE_SCHEMA, QualityResult
from tracer_kit.quality.score import SCORE_WEIGHTS, gate, quality_score
from tracer_kit.settings import settings
from tracer_kit.types import Issue, by_severity

__all__ = [
    "assess",
    "assess_ingested",
    "check_compatible",
    "check_schema",
    "read_context",
    "read_file",
    "validate",
]


@dataclass(frozen=True)
class _Source:
    """The frame's text once written as bronze, and what that pass learned."""

    text: pl.LazyFrame  # bronze, renamed to field names, every field present
    bronze: pl.LazyFrame  # bronze under the file's own names
    bronze_columns: list[str]
    clean: set[str]
    extras: list[str]


def _bronze_plan(
    frame: pl.LazyFrame, names: Sequence[str], original: dict[str, str]
) -> tuple[pl.LazyFrame, list[str]]:
    """The records' text under the file's own column names, and those names."""
    data = [c for c in names if c not in ("source_row", "source_line")]
    plan = frame.select(
        "source_row", "source_line", *[pl.col(c).alias(original.get(c, c)) for c in data]
    )
    return plan, [original.get(c, c) for c in data]


def _write_bronze(
    frame: pl.LazyFrame, blueprint: Blueprint, mapping: dict[str, str], work: Path, decimal: str
) -> _Source:
    """Parse the source once: its text becomes bronze (every later pass reads Parquet), and
    a pass over bronze finds the columns already in canonical form (one path on both
    engines: counted beside the write in one ``collect_all``, polars parsed the CSV a second
    time, and the 1 GB validation took as long).
    """  # noqa: D205
    original = {dst: src for src, dst in mapping.items()}
    names = frame.collect_schema().names()
    known = {f.name for f in blueprint.fields}
    bronze_plan, bronze_columns = _bronze_plan(frame, names, original)
    dirty = dirty_counts([f for f in blueprint.fields if f.name in names], decimal)
    bronze = materialize(bronze_plan, work / "bronze.parquet", "zstd")
    text = bronze.rename({s: d for s, d in mapping.items() if s in bronze_columns})
    clean = clean_columns(dirty.collect(text)) if dirty else set()
    text = text.with_columns(
        pl.lit(None, dtype=pl.String).alias(f.name) for f in blueprint.fields if f.name not in names
    )
    extras = [c for c in names if c not in known and c not in ("source_row", "source_line")]
    return _Source(text, bronze, bronze_columns, clean, extras)


def _reference_date(
    typed: pl.LazyFrame, blueprint: Blueprint, config: Config, run_date: dt.date
) -> dt.date | None:
    """The configured reference date, else the latest reference-column value not after the run."""
    if config.reference_date is not None or not blueprint.reference_column:
        return config.reference_date
    col = pl.col(blueprint.reference_column)
    agg = Aggregates()
    agg.add("reference", "date", col.filter(col <= run_date).max(), "max")
    return agg.collect(typed)["reference"]["date"]


def _write_checked(
    typed: Typed, checks: list[Check], rows: RowContext, finish: list[pl.Expr], work: Path
) -> tuple[tuple[list[pl.Expr], pl.Expr], Any]:
    """Add every check's scratch columns and the quarantine flag; write the rows once.

    ``finish`` replaces values after the checks saw them (pseudonymised personal fields).
    The clean fields' scratch columns are not written but computed again as the rows are
    read (:attr:`Typed.derived`; 1 GB churn: 18 fewer columns, about a fifth of the write).
    Returns the per-row reasons, the failures (reason and column) and the written rows.
    """
    prepared = [e for c in checks for e in c.prepare(rows)]
    reasons = reasons_of(checks, rows)
    failures = failures_of(checks, rows)
    bad = pl.any_horizontal([r.is_not_null() for r in reasons]).alias(Scratch.BAD.of())
    plan = typed.frame.with_columns(prepared).with_columns(bad)
    if finish:
        plan = plan.with_columns(finish)
    finished = {e.meta.output_name() for e in finish}
    derived = [e for name, exprs in typed.derived.items() if name not in finished for e in exprs]
    if not derived:
        return (reasons, failures), materialize(plan, work / "checked.parquet", "lz4")
    order = plan.collect_schema().names()
    skipped = {e.meta.output_name() for e in derived}
    written = plan.select([c for c in order if c not in skipped])
    checked = materialize(written, work / "checked.parquet", "lz4")
    return (reasons, failures), checked.with_columns(derived).select(order)


def _validated_quarantine(
    checked: pl.LazyFrame,
    bronze: pl.LazyFrame,
    columns: list[str],
    reasons: list[pl.Expr],
    failures: pl.Expr,
) -> pl.LazyFrame:
    """The bad rows' reasons (built for bad rows only) joined to their raw records as JSON."""
    reason_list = pl.concat_list(reasons).list.drop_nulls().list.unique(maintain_order=True)
    is_bad = Scratch.BAD.col()
    bad = checked.filter(is_bad).select(
        pl.col("source_row").alias("__row"),
        reason_list.alias("__reasons"),
        failures.alias("__failures"),
    )
    limit = settings.prefilter_rows
    bad_rows = checked.filter(is_bad).select("source_row").head(limit + 1)
    bad_rows = bad_rows.collect(engine="streaming").get_column("source_row")
    records = bronze
    if len(bad_rows) <= limit:  # few bad rows: read just their row groups of bronze
        records = rows_with_source_row(bronze, bad_rows)
    # join first: only the bad rows' records are encoded as JSON
    joined = records.join(
        bad, left_on="source_row", right_on="__row", how="inner", maintain_order="left"
    )
    return joined.select(
        pl.lit("validate").alias("stage"),
        "source_row",
        "source_line",
        pl.struct(columns).struct.json_encode().alias("raw"),
        pl.col("__reasons").alias("reasons"),
        pl.col("__failures").alias("failures"),
    )


def _write_quarantine(validated: Any, rejects: pl.DataFrame, work: Path) -> int:
    """Quarantine = ingest rejects + validation failures in ``source_row`` order; its row count.

    On Spark the part files are in no particular order, and the ingest rejects (collected
    on the driver) are one more part file.
    """
    line_json = pl.struct(pl.col("raw").alias("_line")).struct.json_encode().alias("raw")
    rejected = rejects.lazy().select(
        pl.lit("ingest").alias("stage"),
        "source_row",
        "source_line",
        line_json,
        pl.concat_list(pl.col("reason").str.split(": ").list.first()).alias("reasons"),
        pl.concat_list(
            pl.struct(
                pl.col("reason").str.split(": ").list.first().alias("reason"),
                pl.lit(None, dtype=pl.String).alias("column"),
            )
        ).alias("failures"),
    )
    if rejects.height:  # the records rejected at ingest belong to bronze too
        rejects.select("source_row", "source_line", line_json).write_parquet(
            work / "bronze.rejects.parquet"
        )
    return engine_of(validated).write_quarantine(
        rejected.cast(QUARANTINE_SCHEMA).collect(),
        validated.cast(QUARANTINE_SCHEMA),
        work / "quarantine.parquet",
    )


def _format_counts(typed: Typed) -> dict[str, pl.Expr]:
    """Per date field and format label, how many values it read (aggregates, one pass)."""
    return {
        f"{name}\0{label}": (pl.col(Scratch.FORMAT.of(name)) == label).sum()
        for name, labels in typed.formats.items()
        for label in labels
    }


def _date_formats(found: dict[str, Any], blueprint: Blueprint, typed: Typed) -> dict[str, Any]:
    """Per date field: how many values each format read (most first), and the convention decided."""
    out: dict[str, Any] = {}
    for f in blueprint.fields:
        if f.kind != "date":
            continue
        labels = typed.formats.get(f.name, ())
        counts = [(label, int(found.get(f"{f.name}\0{label}") or 0)) for label in labels]
        out[f.name] = {name: n for name, n in sorted(counts, key=lambda r: -r[1]) if n}
        plain = f.name in typed.plain_iso
        out[f.name]["convention"] = "iso" if plain else typed.conventions.get(f.name) or "undecided"
    return out


def _findings(
    checks: list[Check], found: dict[str, dict[str, Any]], ctx: IssueContext
) -> tuple[dict[str, float], list[Issue]]:
    """Every check's score part and issues, most severe first."""
    parts = {c.part: round(c.measure(found.get(c.name, {}), ctx), 6) for c in checks if c.part}
    missing = set(SCORE_WEIGHTS) - set(parts)
    if missing:
        msg = f"no registered check measures the score part(s) {sorted(missing)}"
        raise PipelineBugError(msg)
    issues: list[Issue] = []
    for c in checks:
        if ctx.rows or not c.needs_rows:
            issues += c.issues(found.get(c.name, {}), ctx)
    ctx.examples.fill()  # every issue's examples, in two passes
    return {k: parts[k] for k in SCORE_WEIGHTS}, by_severity(issues)


def _typed_rows(
    frame: pl.LazyFrame,
    blueprint: Blueprint,
    config: Config,
    mapping: dict[str, str],
    work: Path,
    decimal: str,
    run_date: dt.date,
    references: Mapping[str, pl.Series] | None,
) -> tuple[_Source, field_transforms.TransformPlan, Typed, RowContext]:
    """Bronze written, transforms applied, every field typed: what the checks start from."""
    source = _write_bronze(frame, blueprint, mapping, work, decimal)
    steps = field_transforms.plan(blueprint, config)
    typed = cast_fields(
        steps.apply(source.text),
        blueprint,
        clean=source.clean - steps.fields,
        extras=source.extras,
        decimal=decimal,
    )
    reference = _reference_date(typed.frame, blueprint, config, run_date)
    rows = RowContext(
        blueprint=blueprint,
        typed=typed.frame,
        work=work,
        clean=frozenset(source.clean - steps.fields),
        original={dst: src for src, dst in mapping.items()},
        rules=RuleContext(run_date=run_date, reference_date=reference),
        references=dict(references or {}),
    )
    return source, steps, typed, rows


def blueprint_thresholds(config: Config, blueprint: Blueprint) -> Thresholds:
    """The config's quality thresholds with the blueprint's own over them."""
    if not blueprint.thresholds:
        return config.quality.thresholds
    try:
        return Thresholds.model_validate(
            {**config.quality.thresholds.model_dump(), **blueprint.thresholds}
        )
    except ValidationError as exc:
        where = f" ({blueprint.origin})" if blueprint.origin else ""
        msg = f"blueprint {blueprint.name!r}{where}: {validation_message(exc, root='thresholds')}"
        raise BlueprintError(msg) from None


def _issue_context(
    checks: list[Check],
    rows: RowContext,
    typed: Typed,
    checked: pl.LazyFrame,
    rejects: pl.DataFrame,
    rows_quarantined: int,
    config: Config,
    bronze: pl.LazyFrame,
) -> tuple[IssueContext, dict[str, dict[str, Any]]]:
    """Every check's aggregates in one pass over the checked rows, and the counts they add up to.

    The pass also counts the values each date format read. Issues take their examples' values as written from ``bronze``.
    """
    agg = Aggregates()
    agg.add("rows", "n", pl.len(), "sum")
    agg.add("rows", "valid", (~Scratch.BAD.col()).sum(), "sum")
    agg.add_all("formats", {k: (e, "sum") for k, e in _format_counts(typed).items()})
    for c in checks:
        agg.add_all(c.name, c.aggregates(rows))
    found = agg.collect(checked)
    n_parsed, rows_valid = int(found["rows"]["n"]), int(found["rows"]["valid"] or 0)
    rows_in = n_parsed + rejects.height
    if rows_in != rows_valid + rows_quarantined:
        msg = f"row counts do not add up: {rows_in} in, {rows_valid} valid, {rows_quarantined} quarantined"
        raise PipelineBugError(msg)
    ctx = IssueContext(
        blueprint=rows.blueprint,
        thresholds=blueprint_thresholds(config, rows.blueprint),
        checked=checked,
        rows=n_parsed,
        rows_in=rows_in,
        rows_valid=rows_valid,
        rejects=rejects,
        examples=Examples(checked, bronze, rows.original, rows.blueprint.personal),
        run_date=rows.rules.run_date,
        reference_date=rows.rules.reference_date,
    )
    return ctx, found


def _work_dir(work_dir: str | Path | None) -> tuple[Path, Any]:
    keepalive = None
    if work_dir is None:
        keepalive = tempfile.TemporaryDirectory(prefix="tracer-quality-")
        work_dir = keepalive.name
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    return work, keepalive


def assess(
    frame: pl.LazyFrame,
    blueprint: Blueprint,
    *,
    config: Config | None = None,
    rejects: pl.DataFrame | None = None,
    decimal: str = ".",
    run_date: dt.date | None = None,
    column_map: dict[str, str] | None = None,
    work_dir: str | Path | None = None,
    references: Mapping[str, pl.Series] | None = None,
) -> QualityResult:
    """Type, check and score the rows of ``frame`` (text columns + ``source_row``/``source_line``).

    The rows stream through Parquet files in ``work_dir``: the text once (bronze), then the
    typed values with every registered check's flags; counts, issues and the score are
    aggregates over those files, so memory stays bounded whatever the file's size.

    Parameters
    ----------
    frame
        Text columns already renamed to the blueprint's field names, plus ``source_row`` and
        ``source_line``. Columns the blueprint does not know are kept as text (extras).
    blueprint
        The blueprint whose fields, transforms, rules and identifier apply.
    config
        Thresholds, the reference date, field transforms and personal fields.
    rejects
        Records rejected at ingest; they count in ``rows_in`` and go to quarantine.
    decimal
        ``","`` when numbers use decimal commas.
    run_date
        The run's UTC date (default: today, UTC); no ``last_activity_date``-like value may be after it.
    column_map
        The renames applied to ``frame`` (source -> field); bronze and quarantine keep the
        file's own names.
    work_dir
        Where the staged Parquet goes (default: a temporary folder that lives as long as
        the result).

    Returns
    -------
    QualityResult
        Counts, score and parts, issues, valid typed rows and the quarantine table.
    """
    preload_pandera()  # (for the schema check at the end)
    config = config or Config()
    blueprint = field_transforms.configured(blueprint, config)
    run_date = run_date or dt.datetime.now(dt.UTC).date()
    rejects = rejects if rejects is not None else pl.DataFrame(schema=REJECT_SCHEMA)
    work, keepalive = _work_dir(work_dir)
    mapping = dict(column_map or {})
    source, steps, typed, rows = _typed_rows(
        frame, blueprint, config, mapping, work, decimal, run_date, references
    )
    checks = run_checks()
    marks, checked = _write_checked(typed, checks, rows, steps.finish(), work)
    validated = _validated_quarantine(checked, source.bronze, source.bronze_columns, *marks)
    rows_quarantined = _write_quarantine(validated, rejects, work)
    ctx, found = _issue_context(
        checks, rows, typed, checked, rejects, rows_quarantined, config, source.bronze
    )
    parts, issues = _findings(checks, found, ctx)
    result = QualityResult(
        blueprint=blueprint.name,
        rows_in=ctx.rows_in,
        rows_valid=ctx.rows_valid,
        rows_quarantined=rows_quarantined,
        score=quality_score(parts),
        score_parts=parts,
        issues=issues,
        reference_date=rows.rules.reference_date,
        run_date=run_date,
        date_formats=_date_formats(found.get("formats", {}), blueprint, typed),
        column_map=mapping,
        gate_failures=gate(issues, quality_score(parts), ctx.thresholds),
        work_dir=work,
        valid_columns=["source_row", "source_line", *blueprint.field_names, *source.extras],
        bronze_columns=source.bronze_columns,
        rejects=rejects,
        transform_counts=steps.count_changes(source.text),
        personal=sorted(blueprint.personal),
        engine=engine_of(frame),
        _keepalive=keepalive,
    )
    if ctx.rows_valid:
        check_schema(result.valid_lazy(), blueprint, rows=ctx.rows_valid)
    return result


def check_schema(
    valid: pl.DataFrame | pl.LazyFrame, blueprint: Blueprint, *, rows: int | None = None
) -> None:
    """Assert the valid rows satisfy the blueprint's pandera schema; a breach is a bug.

    Above :attr:`Settings.schema_check_rows` rows an even spread of that many rows is checked (every
    row already passed the same checks as polars flags, so this guards the flags themselves).

    Raises
    ------
    PipelineBugError
        Listing the failing checks, when casting or quarantine let a bad row through.
    """
    columns = [f.name for f in blueprint.fields]
    if "source_row" not in valid.collect_schema().names():
        valid = valid.lazy().with_row_index("source_row", offset=1)
    sample = fit_rows(valid.select("source_row", *columns), settings.schema_check_rows, rows=rows)
    schema = blueprint.pandera_schema()
    from pandera.errors import SchemaErrors  # (pandera is loaded by now: no import cost here)

    try:
        schema.validate(sample.drop("source_row"), lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.select("column", "check").unique().rows()
        msg = f"valid rows break the {blueprint.name} schema (a bug): {cases[:10]}"
        raise PipelineBugError(msg) from None


def validate(
    path_or_frame: str | Path | pl.DataFrame | pl.LazyFrame,
    blueprint: str | Blueprint,
    *,
    config: Config | dict[str, Any] | str | Path | None = None,
) -> QualityResult:
    """Check a file or frame against a blueprint without writing anything.

    Parameters
    ----------
    path_or_frame
        A file path (read with :func:`read_table`, bad lines quarantined) or a polars frame.
    blueprint
        A blueprint name or object.
    config
        A :class:`Config`, a dict of its fields, or a JSON/YAML file.

    Returns
    -------
    QualityResult
        Score, parts, issues, counts, valid rows and quarantine; ``passed`` tells the gate.

    Raises
    ------
    CompatibilityError
        When required fields are missing (with suggestions).
    IngestError
        When the file cannot be read.
    """
    cfg = load_config(config)
    bp = get_blueprint(blueprint)
    if isinstance(path_or_frame, (str, Path)):
        preload_pandera()  # (for the schema check at the end, beside the read)
        return assess_ingested(read_file(path_or_frame, cfg, blueprint=bp), bp, config=cfg)
    frame = path_or_frame.lazy()
    names = frame.collect_schema().names()
    columns = [c for c in names if c not in ("source_row", "source_line")]
    if "source_row" not in names:
        frame = frame.with_row_index("source_row", offset=1).with_columns(
            pl.col("source_row").cast(pl.Int64),
            pl.lit(None, dtype=pl.Int64).alias("source_line"),
        )
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in columns)
    bp = blueprint_form(bp, columns, config_column_map(cfg, bp))
    mapping = match_columns(
        columns, bp, config_column_map(cfg, bp), present_only=cfg.quality.map_present_only
    )
    return assess(frame.rename(mapping), bp, config=cfg, column_map=mapping)


def assess_ingested(
    ing: Ingested,
    blueprint: Blueprint,
    *,
    config: Config,
    run_date: dt.date | None = None,
    work_dir: str | Path | None = None,
    references: Mapping[str, pl.Series] | None = None,
) -> QualityResult:
    """Map an ingested file's columns onto the blueprint, then :func:`assess` it (staging in ``work_dir``).

    ``references``: per field with ``references``, the values it may take.
    """
    path = ing.info.path  # (messages only: a file's path or a URL without secrets, as text)
    blueprint = blueprint_form(blueprint, ing.info.columns, config_column_map(config, blueprint))
    mapping = _mapping(ing.info.columns, blueprint, config, path)
    return assess(
        ing.frame.rename(mapping),
        blueprint,
        config=config,
        rejects=ing.rejects,
        decimal=ing.info.decimal or ".",
        run_date=run_date,
        column_map=mapping,
        work_dir=work_dir,
        references=references,
    )


def check_compatible(path: str | Path, blueprint: Blueprint, config: Config) -> dict[str, str]:
    """Read ``path`` as a run would and map its columns onto ``blueprint``; return the renames.

    Runs that start a notebook kernel call this first, so that an unreadable file, a bad
    mapping or a bad transform (or a missing pseudonymisation key) is reported in a second,
    before any kernel starts.
    """
    ing = read_file(path, config, blueprint=blueprint)
    blueprint = blueprint_form(blueprint, ing.info.columns, config_column_map(config, blueprint))
    field_transforms.plan(field_transforms.configured(blueprint, config), config)
    return _mapping(ing.info.columns, blueprint, config, path)


def _mapping(
    columns: list[str], blueprint: Blueprint, config: Config, path: str | Path | None
) -> dict[str, str]:
    """The config's renames (its label column included) resolved against the source's columns."""
    return match_columns(
        columns,
        blueprint,
        config_column_map(config, blueprint),
        path=path,
        present_only=config.quality.map_present_only,
    )


def read_file(
    path: str | Path,
    config: Config,
    staging_dir: str | Path | None = None,
    *,
    blueprint: Blueprint | None = None,
) -> Ingested:
    """:func:`read_table` with the input options of a :class:`Config` (and the blueprint's sheet choice).

    A caller that validates next starts pandera loading first
    (:func:`~tracer_kit.heavy.preload_pandera`): a profile or a draft never needs it, and an
    import on a thread still takes the GIL from the read.
    """
    return read_source(path, config.read, read_context(config, staging_dir, blueprint))


def read_context(
    config: Config, staging_dir: str | Path | None = None, blueprint: Blueprint | None = None
) -> ReadContext:
    """Where a read stages its copies, and (given a blueprint) which workbook sheet fits it."""
    fits = fits_blueprint(blueprint, config) if blueprint is not None else None
    return ReadContext(staging_dir, fits)


# --------------------------------------------------------------------------- profiles
