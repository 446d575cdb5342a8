"""The ``tracer`` command line: thin wrappers over the Python API.

Exit codes: 0 success; 1 a :class:`TracerError` (one line on stderr, ``error: <message>``);
2 bad usage; 3 the quality gate failed.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import inspect
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tracer_kit._resources import resource_path
from tracer_kit.connections import is_url, redact
from tracer_kit.errors import ConfigError, QualityGateError, TracerError
from tracer_kit.lazy import lazy_module
from tracer_kit.options import cli_fields
from tracer_kit.settings import release_freed_memory
from tracer_kit.types import SCORE_PARTS
from tracer_kit.workspace import DEFAULT_REPORTS, DEFAULT_WAREHOUSE

# The commands' modules, imported when a command first uses them (``tracer --help``: 0.2 s,
# not the 2.3 s of importing every stage; see tracer_kit.lazy).
tk_blueprints = lazy_module("tracer_kit.blueprints")
tk_cells = lazy_module("tracer_kit.cells")
tk_compare = lazy_module("tracer_kit.comparison")
tk_config = lazy_module("tracer_kit.config")
tk_contract = lazy_module("tracer_kit.blueprints.contract")
tk_infer = lazy_module("tracer_kit.drafting")
tk_datasets = lazy_module("tracer_kit.datasets")
tk_engine = lazy_module("tracer_kit.engine")
tk_destinations = lazy_module("tracer_kit.destinations")
tk_failing = lazy_module("tracer_kit.failing")
tk_history = lazy_module("tracer_kit.history_page")
tk_project = lazy_module("tracer_kit.project")
tk_cron = lazy_module("tracer_kit.cron")
tk_model = lazy_module("tracer_kit.model")
tk_notebooks = lazy_module("tracer_kit.notebooks")
tk_pipeline = lazy_module("tracer_kit.pipeline")
tk_profiling = lazy_module("tracer_kit.profiling")
tk_quality = lazy_module("tracer_kit.quality")
tk_report = lazy_module("tracer_kit.report")
tk_trends = lazy_module("tracer_kit.trends")
tk_warehouse = lazy_module("tracer_kit.warehouse")
tk_writing = lazy_module("tracer_kit.writing")

__all__ = [
    "app",
    "command_names",
    "main",
    "run_command",
    "validation_summary",
]

app = typer.Typer(
    name="tracer",
    help="tracer-kit: ingest, validate, engineer features, store and report on business files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List recent runs, or show one with `tracer runs show RUN_ID`.")
app.add_typer(runs_app, name="runs")
contract_app = typer.Typer(
    help="Blueprints declared in a file: `tracer contract schema`, `tracer contract check FILE`.",
    no_args_is_help=True,
)
app.add_typer(contract_app, name="contract")

Warehouse = Annotated[
    str,
    typer.Option("--warehouse", help="DuckDB warehouse file.", rich_help_panel="Where things go"),
]
OutputDir = Annotated[
    str,
    typer.Option("--output-dir", help="Folder for run reports.", rich_help_panel="Where things go"),
]
BlueprintOpt = Annotated[
    str, typer.Option("--blueprint", "-b", help="Blueprint name (`tracer blueprints`).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (.json or .yaml); the only way to set thresholds."),
]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="Rename a column: SRC=DST (repeatable).")
]
TransformOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--transform",
        help="Clean a field before its checks: FIELD=STEP,STEP (trim, lower, default=VALUE, ...; repeatable).",
    ),
]
PiiOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--pii", help="A field holding personal data: its values are never shown (repeatable)."
    ),
]
NoModelOpt = Annotated[
    bool,
    typer.Option(
        "--no-model", help="Skip the model stage (no predictions).", rich_help_panel="Model"
    ),
]
SecretParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--secret-param",
        help="A URL query parameter whose value is a secret, masked wherever recorded (repeatable).",
        rich_help_panel="HTTP API sources",
    ),
]
TenureUnitOpt = Annotated[
    str | None,
    typer.Option(
        "--tenure-unit",
        help="customer_churn snapshot: tenure in days, weeks or months.",
        rich_help_panel="Model",
    ),
]
LabelOpt = Annotated[
    str | None,
    typer.Option(
        "--label",
        help="The column holding the label (e.g. Churn), whatever its name.",
        rich_help_panel="Model",
    ),
]
PositiveOpt = Annotated[
    str | None,
    typer.Option(
        "--positive",
        help="The label's positive value (e.g. Yes) when not yes/no, true/false, 1/0.",
        rich_help_panel="Model",
    ),
]
#: ``build_config`` keywords a command may forward by its own parameter names.
_CONFIG_FLAGS = frozenset(
    "no_model pii reference_date dataset notebook label positive tenure_unit".split()
)
ReferenceDateOpt = Annotated[str | None, typer.Option("--reference-date", help="YYYY-MM-DD")]
NotebookOpt = Annotated[
    Path | None,
    typer.Option("--notebook", help="Run this edited copy of the notebook (`tracer init`)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Dataset name that drift and history compare by (default: file stem without a date).",
    ),
]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


OutputFormatOpt = Annotated[
    str, typer.Option("--output-format", help="table (for people), json or csv (for scripts).")
]
LIST_FORMATS = ("table", "json", "csv")


def _print_table(table: Any) -> None:
    """Print a rich table without cutting any cell: wider than the terminal when it must be."""
    from rich.measure import Measurement

    con = _console()
    needed = Measurement.get(con, con.options.update_width(100_000), table).maximum
    if needed > con.width:
        from rich.console import Console

        con = Console(highlight=False, soft_wrap=True, width=needed)
    con.print(table)


def _echo_text(text: str) -> None:
    """Print text that already ends with its own newline (CSV) without adding a blank line."""
    typer.echo(text, nl=not text.endswith("\n"))


def emit_rows(
    rows: list[dict[str, Any]], fmt: str, table: Callable[[list[dict[str, Any]]], Any]
) -> None:
    """Print listing rows as a table for people, or as JSON or CSV for scripts."""
    if fmt not in LIST_FORMATS:
        msg = f"--output-format {fmt!r} should be one of {', '.join(LIST_FORMATS)}"
        raise ConfigError(msg)
    if fmt == "json":
        typer.echo(json.dumps(rows, default=str, indent=1))
    elif fmt == "csv":
        import polars as pl

        flat = [{k: _csv_cell(v) for k, v in r.items()} for r in rows]
        frame = pl.DataFrame(flat, schema=list(rows[0]) if rows else None, infer_schema_length=None)
        _echo_text(tk_writing.neutralise_cells(frame).write_csv())
    else:
        _print_table(table(rows))


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return value if value is None or isinstance(value, (int, float, bool)) else str(value)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors into one line on stderr and the documented exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except QualityGateError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(3) from None
        except TracerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("error: cancelled", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("TRACER_DEBUG"):
                raise
            typer.echo(
                f"error: internal error ({type(exc).__name__}: {exc}); "
                "rerun with TRACER_DEBUG=1 for the traceback and please report it",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _pairs(items: list[str] | None, flag: str, shape: str) -> dict[str, str]:
    """``A=B`` options as a dict (the first ``=`` splits)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{flag} {item!r} should look like {shape}")
        out[key] = value
    return out


def build_config(
    config: Path | None = None,
    *,
    maps: list[str] | None = None,
    reference_date: str | None = None,
    dataset: str | None = None,
    notebook: Path | None = None,
    transforms: list[str] | None = None,
    pii: list[str] | None = None,
    no_model: bool = False,
    secrets: list[str] | None = None,
    label: str | None = None,
    positive: str | None = None,
    tenure_unit: str | None = None,
    read_flags: dict[str, Any] | None = None,
) -> Any:
    """A Config from ``--config`` plus the command-line overrides (``read_flags``: the read
    options' flags, by field name; see :func:`with_read_flags`).
    """  # noqa: D205
    loaded = tk_config.load_config(config)
    base = loaded.model_dump()
    if loaded.pseudonymise_key is not None:  # (a secret: model_dump leaves it out)
        base["pseudonymise_key"] = loaded.pseudonymise_key.get_secret_value()
    quality = base["quality"]
    quality["column_map"] = {**quality["column_map"], **_pairs(maps, "--map", "SRC=DST")}
    for name, steps in _pairs(transforms, "--transform", "FIELD=STEP,STEP").items():
        quality["transforms"][name] = [step.strip() for step in steps.split(",") if step.strip()]
    quality["pii"] = [*quality["pii"], *(p for p in pii or [] if p not in quality["pii"])]
    base["secret_params"] = [*base["secret_params"], *(secrets or [])]
    if no_model:
        base["model"]["enabled"] = False
    base["model"].update({k: v for k, v in {"label": label, "positive": positive}.items() if v})
    if reference_date is not None:
        base["reference_date"] = reference_date
    if dataset is not None:
        base["output"]["dataset"] = dataset
    if notebook is not None:
        base["output"]["notebook"] = str(notebook)
    if tenure_unit is not None:
        base["features"]["tenure_unit"] = tenure_unit
    for field in cli_fields():
        value = (read_flags or {}).get(field.name)
        if value is not None and value is not False:  # (given on the command line)
            place = base["read"]["api"] if field.api else base["read"]
            place[field.name] = _flag_value(field.name, value)
    return tk_config.load_config(base)


def _command_config(given: dict[str, Any]) -> Any:
    """``build_config`` from a command's parameters (``run``, ``validate``), by their names."""
    return build_config(
        given["config"],
        maps=given["map"],
        transforms=given["transform"],
        secrets=given["secret_param"],
        read_flags=given["read_flags"],
        **{k: v for k, v in given.items() if k in _CONFIG_FLAGS},
    )


def _flag_value(name: str, value: Any) -> Any:
    """A read flag's text as the option takes it (``--delimiter tab``, ``--sheet 2``)."""
    if name == "delimiter" and value in ("\\t", "tab"):
        return "\t"
    if name == "sheet" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _flag_type(annotation: Any) -> Any:
    """The CLI type of a read option: a switch, a number or text (``--sheet 2`` is text first)."""
    if annotation is bool:
        return bool
    if annotation in (int | None, float | None):
        return annotation
    return str | None


def with_read_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` the read options' flags, built from :func:`tracer_kit.options.cli_fields`.

    The flags (``--format``, ``--encoding``... ``--paginate``, ``--same-origin``) are declared
    once, as fields of :class:`~tracer_kit.options.ReadOptions` and
    :class:`~tracer_kit.options.ApiOptions`: their names, types, help and panels come from
    there. The command receives them by field name as ``read_flags``.
    """
    fields = cli_fields()
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "read_flags"]
    added = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=False if f.annotation is bool else None,
            annotation=Annotated[
                _flag_type(f.annotation),
                typer.Option(f.flag, help=f.help, rich_help_panel=f.panel),
            ],
        )
        for f in fields
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {f.name: kwargs.pop(f.name, None) for f in fields}
        return command(*args, read_flags=flags, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
    return wrapper


def _print_result(result: Any) -> None:

    con = _console()
    con.print(result.summary())
    parts = _parts(result.score_parts)
    if parts:
        con.print(f"score parts: {parts}")
    model = result.record.model
    line = tk_model.headline(
        tk_blueprints.get_blueprint(result.blueprint),
        model.model_dump(exclude_unset=True) if model else {},
    )
    if line:
        con.print(line, markup=False)
    labels = {
        "report": "quality report",
        "notebook_html": "notebook (HTML)",
        "notebook": "executed notebook",
        "parquet": "processed Parquet",
        "predictions": "predictions",
    }
    for key, label in labels.items():
        if result.outputs.get(key) and Path(result.outputs[key]).exists():
            con.print(f"{label + ':':20} {result.outputs[key]}")


def _parts(score_parts: dict[str, float]) -> str:
    """The score's parts in the formula's order."""
    return ", ".join(f"{k} {100 * score_parts[k]:.1f}%" for k in SCORE_PARTS if k in score_parts)


def _issues_table(issues: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title="issues", show_lines=False)
    for col in ("severity", "column", "check", "observed", "threshold", "rows", "what"):
        table.add_column(
            col, justify="right" if col in ("observed", "threshold", "rows") else "left"
        )
    for i in issues:
        table.add_row(
            i["severity"],
            i["column"] or "",
            i["check"],
            "" if i["observed"] is None else f"{i['observed']:.4g}",
            "" if i["threshold"] is None else f"{i['threshold']:.4g}",
            f"{i['rows_affected']:,}",
            i["message"],
        )
    return table


def _print_issues(issues: list[dict[str, Any]]) -> None:
    """The issues as a table for people, never cut (wider than the terminal when it must be)."""
    if not issues:
        _console().print("no issues")
        return
    _print_table(_issues_table(issues))


EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine", help="polars (one machine) or spark (a Spark cluster).", rich_help_panel="Spark"
    ),
]
MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--master",
        help="With --engine spark: local[2], spark://HOST:7077, yarn or sc://HOST:15002.",
        rich_help_panel="Spark",
    ),
]


@app.command()
@friendly
@with_read_flags
def run(
    input: Annotated[
        str,
        typer.Argument(
            help=(
                "The file to process, a database URL (postgresql://, sqlite:///, duckdb:///) "
                "with --table or --query, or an https:// URL (a JSON API, or a file to "
                "download); with --engine spark: any path or URI Spark reads."
            )
        ),
    ],
    blueprint: BlueprintOpt,
    config: ConfigOpt = None,
    map: MapOpt = None,
    reference_date: ReferenceDateOpt = None,
    transform: TransformOpt = None,
    pii: PiiOpt = None,
    label: LabelOpt = None,
    positive: PositiveOpt = None,
    tenure_unit: TenureUnitOpt = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_dir: OutputDir = DEFAULT_REPORTS,
    no_notebook: Annotated[
        bool, typer.Option("--no-notebook", help="Run in-process, without Papermill.")
    ] = False,
    dataset: DatasetOpt = None,
    notebook: NotebookOpt = None,
    no_model: NoModelOpt = False,
    engine: EngineOpt = "polars",
    master: MasterOpt = None,
    secret_param: SecretParamOpt = None,
    read_flags: dict[str, Any] | None = None,
) -> None:
    """Run a file, a database table or an API's records through a blueprint (via the notebook unless --no-notebook)."""
    cfg = _command_config(locals())
    if no_notebook and cfg.output.notebook:
        raise ConfigError("--notebook and --no-notebook contradict each other; choose one")
    common: dict[str, Any] = {"config": cfg, "warehouse": warehouse, "output_dir": output_dir}
    _print_result(_run_on(engine, master, input, blueprint, common, notebook=not no_notebook))


def _source(text: str, *, uris: bool = False) -> str | Path:
    """A command's input: a URL (or, for an engine that reads URIs, anything) as written, else a path."""
    return text if uris or is_url(text) else Path(text)


def _run_on(
    engine: str,
    master: str | None,
    source: str,
    blueprint: str,
    common: dict[str, Any],
    *,
    notebook: bool,
) -> Any:
    """``tracer run`` on the chosen engine, in-process or through the notebook."""
    chosen = tk_engine.resolve_engine(engine, master=master)  # (Spark starts when first used)
    path = _source(source, uris=chosen.reads_uris)  # (a URL keeps its "//")
    if notebook:
        extra = chosen.notebook_parameters()
        return tk_notebooks.run_notebook(path, blueprint, **common, return_frame=False, **extra)
    return tk_pipeline.run_pipeline(path, blueprint, **common, return_frame=False, engine=chosen)


@app.command()
@friendly
def predict(
    run_id: Annotated[str, typer.Argument(help="The training run (`tracer runs`).")],
    input: Annotated[
        str,
        typer.Argument(help="The new file to score (with --engine spark: any URI Spark reads)."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the predictions here (.csv or .parquet)."),
    ] = None,
    force: ForceOpt = False,
    raw_cells: RawCellsOpt = False,
    config: ConfigOpt = None,
    map: MapOpt = None,
    reference_date: Annotated[
        str | None,
        typer.Option("--reference-date", help="YYYY-MM-DD (default: the training run's)"),
    ] = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_dir: OutputDir = DEFAULT_REPORTS,
    engine: EngineOpt = "polars",
    master: MasterOpt = None,
) -> None:
    """Score a new file with a run's saved model (validated first; exit 3 when the gate fails)."""
    chosen = tk_engine.resolve_engine(engine, master=master)  # (Spark starts when first used)
    overrides = tk_config.load_config(config).model_dump(exclude_unset=True)
    if reference_date:
        overrides["reference_date"] = reference_date
    if map:  # (added to the training run's renames, which apply to the columns the file has)
        quality = overrides.setdefault("quality", {})
        quality["column_map"] = {
            **quality.get("column_map", {}),
            **_pairs(map, "--map", "SRC=DST"),
        }
    result = tk_pipeline.predict(
        run_id,
        _source(input, uris=chosen.reads_uris),
        out=out,
        config=overrides,
        warehouse=warehouse,
        output_dir=output_dir,
        force=force,
        raw_cells=raw_cells,
        engine=chosen,
    )
    _print_result(result)
    if result.rows_quarantined:
        _console().print(
            f"{result.rows_quarantined} row(s) failed validation and were not scored: "
            f"tracer runs show {result.run_id}"
        )
    if out and result.outputs.get("predictions"):
        _console().print(f"{'predictions written:':20} {out}")


@app.command()
@friendly
@with_read_flags
def validate(
    input: Annotated[
        str,
        typer.Argument(help="The file to check, a database URL (--table/--query) or an API URL."),
    ],
    blueprint: BlueprintOpt,
    config: ConfigOpt = None,
    map: MapOpt = None,
    reference_date: ReferenceDateOpt = None,
    transform: TransformOpt = None,
    pii: PiiOpt = None,
    label: LabelOpt = None,
    positive: PositiveOpt = None,
    tenure_unit: TenureUnitOpt = None,
    secret_param: SecretParamOpt = None,
    output_format: OutputFormatOpt = "table",
    read_flags: dict[str, Any] | None = None,
) -> None:
    """Check a file against a blueprint: score, parts and issues; exit 3 when the gate fails."""
    cfg = _command_config(locals())
    q = tk_quality.validate(_source(input), blueprint, config=cfg)
    _print_validation(q, redact(input), output_format)
    if not q.passed:
        typer.echo("error: quality gate failed: " + "; ".join(q.gate_failures), err=True)
        raise typer.Exit(3)


def validation_summary(q: Any, shown: str) -> dict[str, Any]:
    """A validation's verdict as JSON-ready values (``--output-format json``, ``POST /validate``)."""
    keys = ("rows_in", "rows_valid", "rows_quarantined", "score", "score_parts")
    return {
        "input": shown,
        "passed": q.passed,
        **{k: getattr(q, k) for k in keys},
        "gate_failures": q.gate_failures,
        "issues": [i.to_dict() for i in q.issues],
    }


def _print_validation(q: Any, shown: str, output_format: str) -> None:
    """``tracer validate``'s verdict as a table for people, or JSON or CSV for scripts."""
    issues = [i.to_dict() for i in q.issues]
    if output_format == "json":
        typer.echo(json.dumps(validation_summary(q, shown), default=str, indent=1))
    elif output_format == "table":
        con = _console()
        con.print(f"quality gate: {'passed' if q.passed else 'FAILED'}")
        counts = (
            f"{q.rows_in:,} rows in, {q.rows_valid:,} valid, {q.rows_quarantined:,} quarantined"
        )
        con.print(f"{shown}: {counts}", markup=False)  # (a URL's password never shown)
        con.print(f"quality score {q.score:.1f} ({_parts(q.score_parts)})")
        _print_issues(issues)
    else:  # csv, or one line naming the formats
        emit_rows(issues, output_format, _issues_table)


@app.command()
@friendly
@with_read_flags
def profile(
    input: Annotated[
        str,
        typer.Argument(help="The file to profile, a database URL (--table/--query) or an API URL."),
    ],
    secret_param: SecretParamOpt = None,
    read_flags: dict[str, Any] | None = None,
) -> None:
    """Print a file's metadata and a per-column summary (type, nulls, distinct, min, max)."""
    from rich.table import Table

    cfg = build_config(None, secrets=secret_param, read_flags=read_flags)
    p = tk_profiling.profile(_source(input), config=cfg)
    info = p.info
    con = _console()
    con.print(f"file      {info.path}")
    remote = info.format in ("postgresql", "sqlite", "duckdb", "api")  # (no file's own hash)
    con.print(
        f"size      {info.size:,} bytes   {'fingerprint' if remote else 'sha256'} {info.sha256}"
    )
    read = ", ".join(f"{k} {v!r}" for k, v in info.read_options().items() if v is not None)
    con.print(f"read as   {read}")
    con.print(
        f"rows      {info.row_count:,} ({p.rejects:,} rejected)   columns {len(info.columns)}"
    )
    for w in info.warnings:
        con.print(f"warning   {w}")
    table = Table()
    for col in ("column", "type", "nulls", "distinct", "min", "max"):
        table.add_column(col, justify="right" if col in ("nulls", "distinct") else "left")
    for r in p.columns.iter_rows(named=True):
        table.add_row(
            r["column"],
            r["dtype"],
            f"{r['nulls']:,}",
            f"{r['distinct']:,}",
            r["min"] or "",
            r["max"] or "",
        )
    con.print(table)


@app.command()
@friendly
def blueprints(output_format: OutputFormatOpt = "table") -> None:
    """List the blueprints with their required and optional fields and their features."""
    rows = [
        {
            "blueprint": bp.name,
            "description": bp.description,
            "required": list(bp.required),
            "optional": list(bp.optional),
            "features": list(bp.feature_names),
        }
        for bp in tk_blueprints.list_blueprints()
    ]

    def table(rows: list[dict[str, Any]]) -> Any:
        from rich.table import Table

        t = Table(show_lines=True)
        for col in ("blueprint", "required", "optional", "features"):
            t.add_column(col, no_wrap=True)
        for r in rows:
            t.add_row(
                f"{r['blueprint']}\n[dim]{r['description']}[/dim]",
                "\n".join(r["required"]),
                "\n".join(r["optional"]),
                "\n".join(r["features"]),
            )
        return t

    emit_rows(rows, output_format, table)


@runs_app.callback(invoke_without_command=True)
@friendly
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 20,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_format: OutputFormatOpt = "table",
) -> None:
    """Recent runs: what ran, on which file, with what result."""
    if ctx.invoked_subcommand is not None:
        return

    emit_rows(
        tk_warehouse.recent_runs(limit, warehouse=warehouse).to_dicts(), output_format, _runs_table
    )


def _runs_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table()
    numeric = ("in", "valid", "quar.", "out", "score")
    for col in ("run", "blueprint", "dataset", "state", "file", "started (UTC)", *numeric, "error"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=col != "error")
    for r in rows:
        table.add_row(
            r["run_id"],
            r["blueprint"],
            r["dataset"] or "",
            r["state"],
            Path(r["input_path"] or "").name,
            str(r["started_at"])[:19],
            _n(r["rows_in"]),
            _n(r["rows_valid"]),
            _n(r["rows_quarantined"]),
            _n(r["rows_out"]),
            "" if r["quality_score"] is None else f"{r['quality_score']:.1f}",
            r["error"] or "",
        )
    return table


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@runs_app.command("show")
@friendly
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Everything about one run: parameters, timings, outputs and issues."""
    row = tk_warehouse.run_row(run_id, warehouse=warehouse)
    con = _console()
    columns = tk_trends.RUN_COLUMNS
    for key in columns[:5] + ("input_sha256",) + columns[5:]:  # (the digest by its input)
        con.print(f"{key:18} {row[key] if row[key] is not None else ''}")
    row["outputs"] = {
        k: v
        for k, v in row["outputs"].items()
        if not isinstance(v, str) or k.endswith("sha256") or Path(v).exists()
    }
    row["params"] = row["record"].as_params()
    for key in ("score_parts", "read_options", "params", "stage_seconds", "outputs", "versions"):
        con.print(f"{key:18} {json.dumps(row[key], default=str)}")
    _print_issues(row["issues"])


DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would go; remove nothing.")]


def _removal(run_ids: list[str], warehouse: str, dry_run: bool) -> None:

    removal = tk_warehouse.delete_runs(run_ids, warehouse=warehouse, dry_run=dry_run)
    con = _console()
    for run_id in removal.run_ids:
        con.print(f"{'would delete' if dry_run else 'deleted'} run {run_id}")
    for path in removal.files:
        con.print(f"  {'would remove' if dry_run else 'removed'} {path}")
    con.print(("would remove " if dry_run else "removed ") + removal.summary())


@runs_app.command("delete")
@friendly
def runs_delete(
    run_ids: Annotated[list[str], typer.Argument(help="The runs to delete.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    dry_run: DryRunOpt = False,
) -> None:
    """Delete runs: their rows, processed files, reports and bronze no other run uses."""
    _removal(run_ids, warehouse, dry_run)


@app.command()
@friendly
def prune(
    keep_last: Annotated[
        int | None,
        typer.Option("--keep-last", help="Completed runs to keep per blueprint and dataset."),
    ] = None,
    failed_older_than: Annotated[
        float | None,
        typer.Option(
            "--failed-older-than", help="Also remove failed and cancelled runs older than DAYS."
        ),
    ] = None,
    include_last_good: Annotated[
        bool,
        typer.Option(
            "--include-last-good",
            help="Allow removing a dataset's only remaining completed run (kept by default).",
        ),
    ] = False,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only this dataset's runs.")
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", help="Only completed runs older than this many days."),
    ] = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    dry_run: DryRunOpt = False,
) -> None:
    """Remove old runs: completed ones beyond the newest N, failed ones past an age; never a dataset's last good run."""
    plan = tk_warehouse.prune_plan(
        keep_last=keep_last,
        dataset=dataset,
        older_than_days=older_than,
        failed_older_than_days=failed_older_than,
        include_last_good=include_last_good,
        warehouse=warehouse,
    )
    con = _console()
    for group in plan:
        name = f"{group.blueprint} / {group.dataset or '(no dataset)'}"
        con.print(f"{name}: keeps {len(group.keep)}, removes {len(group.remove)}", markup=False)
        for run_id in group.keep:
            why = " (the last good run)" if run_id == group.kept_last_good else ""
            con.print(f"  keep   {run_id}{why}", markup=False)
        for run_id in group.remove:
            con.print(f"  {'would remove' if dry_run else 'remove'} {run_id}", markup=False)
    _removal([r for g in plan for r in reversed(g.remove)], warehouse, dry_run)


ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite the --out file when it exists.")]
RawCellsOpt = Annotated[
    bool,
    typer.Option(
        "--raw-cells",
        help="Write text cells as they are (by default a cell starting with = + - @ gets a leading ').",
    ),
]


@app.command()
@friendly
def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the warehouse.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_format: Annotated[
        str, typer.Option("--output-format", help="table, csv, json or parquet.")
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the result to this file (.csv, .parquet, .json, .xlsx)."),
    ] = None,
    force: ForceOpt = False,
    raw_cells: RawCellsOpt = False,
) -> None:
    """Answer one SELECT over the warehouse (read-only: no COPY, EXPORT, ATTACH or file access)."""
    import polars as pl

    if output_format not in ("table", "csv", "json", "parquet"):
        raise ConfigError(
            f"--output-format {output_format!r} should be table, csv, json or parquet"
        )
    if output_format == "parquet" and out is None:
        raise ConfigError("--output-format parquet needs --out FILE")
    if out is not None:
        tk_writing.check_destination(out, force=force, warehouse=warehouse)  # (before any work)
    df = tk_warehouse.query(sql, warehouse=warehouse)
    if out is not None:
        tk_writing.write_table(df, out, force=force, raw_cells=raw_cells, warehouse=warehouse)
        typer.echo(f"wrote {df.height} rows to {out}")
    elif output_format == "table":
        with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=60, tbl_width_chars=200):
            typer.echo(str(df))
    elif output_format == "csv":
        _echo_text((df if raw_cells else tk_writing.neutralise_cells(df)).write_csv())
    else:
        typer.echo(json.dumps(df.to_dicts(), default=str, indent=1))


@app.command()
@friendly
def quarantine(
    run_id: Annotated[str, typer.Argument(help="The run (`tracer runs`).")],
    check: Annotated[
        str | None,
        typer.Option("--check", help="Only rows failing this check (a reason or rule name)."),
    ] = None,
    column: Annotated[
        str | None, typer.Option("--column", help="Only rows failing on this column.")
    ] = None,
    include_pii: Annotated[
        bool,
        typer.Option(
            "--include-pii",
            help="Show personal values, decrypted with TRACER_ENCRYPTION_KEY (hidden by default).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write every failing row here (.csv, .parquet, .json, .xlsx)."),
    ] = None,
    force: ForceOpt = False,
    raw_cells: RawCellsOpt = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to print.")] = 20,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """A run's failing rows per check and column, with the values as the file wrote them."""
    from rich.table import Table

    if out is not None:
        tk_writing.check_destination(out, force=force, warehouse=warehouse)
    rows = tk_failing.failing_rows(
        run_id,
        check=check,
        column=column,
        include_pii=include_pii,
        limit=None if out is not None else limit,
        warehouse=warehouse,
    )
    if out is not None:
        tk_writing.write_table(rows, out, force=force, raw_cells=raw_cells, warehouse=warehouse)
        typer.echo(f"wrote {rows.height:,} failing rows of run {run_id} to {out}")
        return
    counts = tk_failing.run_checks_failed(run_id, warehouse=warehouse)
    con = _console()
    table = Table(title=f"run {run_id}: failing rows per check")
    for col in ("check", "column", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for r in counts.iter_rows(named=True):
        table.add_row(r["check"], r["column"] or "(the row)", _n(r["rows"]))
    _print_table(table)
    table = Table()
    for col in ("row", "line", "failed", "record"):
        table.add_column(col, justify="right" if col in ("row", "line") else "left")
    values = [c for c in rows.columns if c not in tk_failing.FAILING_COLUMNS]
    for r in rows.iter_rows(named=True):
        record = ", ".join(f"{c}={r[c]}" for c in values if r[c] is not None)
        table.add_row(
            _n(r["source_row"]), _n(r["source_line"]), r["failed"], tk_cells.shorten(record, 2000)
        )
    _print_table(table)
    if rows.height == limit:
        con.print(f"(the first {limit} rows; --out FILE.csv writes them all)", markup=False)


@app.command("backup")
@friendly
def backup_command(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Folder for backups (default: backups/ beside the warehouse)."),
    ] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", help="Keep only the newest N backups in that folder.")
    ] = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Copy the warehouse (under its write lock) and every file it references, with SHA-256s."""
    _console().print(
        tk_warehouse.backup(to=to, keep=keep, warehouse=warehouse).summary(), markup=False
    )


@app.command("verify")
@friendly
def verify_command(warehouse: Warehouse = DEFAULT_WAREHOUSE) -> None:
    """Check the warehouse opens and every file it references exists unchanged; list orphans."""
    found = tk_warehouse.verify(warehouse)
    con = _console()
    for problem in found.problems:
        con.print(f"problem   {problem}", markup=False)
    for orphan in found.orphans:
        con.print(f"orphan    {orphan} (no run references it)", markup=False)
    unhashed = (
        f" ({found.unhashed} without a recorded hash: existence only)" if found.unhashed else ""
    )
    con.print(
        f"{warehouse}: {found.checked} file(s) checked{unhashed}, {len(found.problems)} problem(s), "
        f"{len(found.orphans)} orphan(s)",
        markup=False,
    )
    if not found.ok:
        typer.echo(f"error: {warehouse} failed verification: {found.problems[0]}", err=True)
        raise typer.Exit(1)


@app.command("restore")
@friendly
def restore_command(
    backup: Annotated[Path, typer.Argument(help="A backup folder (`tracer backup`).")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Put a backup back after verifying it (the current warehouse is moved aside, not deleted)."""
    moved = tk_warehouse.restore(backup, warehouse=warehouse)
    con = _console()
    if moved is not None:
        con.print(f"the previous warehouse is kept as {moved}", markup=False)
    con.print(f"restored {backup} into {warehouse}", markup=False)


@app.command("rebuild")
@friendly
def rebuild_command(
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    processed_dir: Annotated[
        Path | None,
        typer.Option(
            "--processed-dir", help="Where the run files are (default: processed/ beside it)."
        ),
    ] = None,
) -> None:
    """Make a new warehouse from the completed runs' files on disk (when there is no backup)."""
    found = tk_warehouse.rebuild(warehouse=warehouse, processed_dir=processed_dir)
    con = _console()
    if found.moved_aside is not None:
        con.print(f"the previous warehouse is kept as {found.moved_aside}", markup=False)
    for run_id in found.runs:
        con.print(f"recovered {run_id}", markup=False)
    for why in found.skipped:
        con.print(f"not recovered {why}", markup=False)
    con.print(
        f"rebuilt {warehouse}: {len(found.runs)} run(s) recovered, {len(found.skipped)} not; "
        "failed runs and runs from before this version are not recoverable",
        markup=False,
    )


@app.command()
@friendly
def report(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_dir: Annotated[
        str | None,
        typer.Option(
            "--output-dir", help="Folder for run reports.", rich_help_panel="Where things go"
        ),
    ] = None,
) -> None:
    """(Re)build a run's HTML quality report."""
    typer.echo(str(tk_report.quality_report(run_id, warehouse=warehouse, output_dir=output_dir)))


@app.command()
@friendly
def export(
    run_id: Annotated[str, typer.Argument(help="A completed run (`tracer runs`).")],
    url: Annotated[
        str,
        typer.Argument(
            help="postgresql://user@host:5432/db (password from the URL, PGPASSWORD, "
            "~/.pgpass or TRACER_DB_URL), or env:NAME."
        ),
    ],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Copy a run's processed rows, quarantine, predictions and bronze records to PostgreSQL."""
    _console().print(
        tk_destinations.export(run_id, url, warehouse=warehouse).summary(), markup=False
    )


@app.command()
@friendly
def batch(
    patterns: Annotated[list[str], typer.Argument(help="Files or glob patterns (quote them).")],
    blueprint: BlueprintOpt,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", help="Notebooks at once.")] = 3,
    config: ConfigOpt = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_dir: OutputDir = DEFAULT_REPORTS,
    output_format: OutputFormatOpt = "table",
    dataset: DatasetOpt = None,
) -> None:
    """Run the notebook on many files in parallel; print a summary; exit 1 if any failed."""
    import glob

    paths: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found and Path(pattern).exists():
            found = [pattern]
        if not found:
            raise ConfigError(f"{pattern!r} matches no file")
        paths.extend(p for p in found if p not in paths)
    results = tk_notebooks.run_batch(
        paths,
        blueprint,
        max_concurrent=max_concurrent,
        config=build_config(config, dataset=dataset),
        warehouse=warehouse,
        output_dir=output_dir,
    )
    rows = [
        {
            "file": path,
            "state": r.state,
            "rows_in": r.rows_in,
            "rows_valid": r.rows_valid,
            "rows_quarantined": r.rows_quarantined,
            "quality_score": r.quality_score,
            "seconds": round(r.stage_seconds.get("total", 0), 3),
            "run_id": r.run_id,
            "error": r.error,
        }
        for path, r in zip(paths, results, strict=True)
    ]
    emit_rows(rows, output_format, _batch_table)
    failed = [r for r in results if r.state != "COMPLETED"]
    if failed:
        typer.echo(f"error: {len(failed)} of {len(results)} file(s) failed", err=True)
        raise typer.Exit(1)


def _batch_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"batch: {len(rows)} file(s)")
    numeric = ("in", "valid", "quarantined", "score", "seconds")
    for col in ("file", "state", *numeric, "run / error"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=True)
    for r in rows:
        table.add_row(
            r["file"],
            r["state"],
            _n(r["rows_in"]),
            _n(r["rows_valid"]),
            _n(r["rows_quarantined"]),
            "" if r["quality_score"] is None else f"{r['quality_score']:.1f}",
            f"{r['seconds']:.1f}",
            r["error"] or r["run_id"],
        )
    return table


@app.command()
@friendly
def rerun(
    run_id: Annotated[str, typer.Argument(help="The run to repeat.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Re-execute a run with its stored parameters (same run date and reference date).

    A run that went through a notebook goes through the same notebook again; the new run
    records which run it repeats (``record.rerun_of``).
    """
    result = tk_notebooks.rerun(run_id, warehouse=warehouse)
    _print_result(result)
    typer.echo(f"repeats run {run_id}")


@app.command()
@friendly
def demo(
    samples: Annotated[Path, typer.Option("--samples", help="Where the sample files go.")] = Path(
        "data/samples"
    ),
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    output_dir: OutputDir = DEFAULT_REPORTS,
) -> None:
    """Write the sample data and run every built-in blueprint on it through Papermill."""
    con = _console()
    written = tk_datasets.write_samples(samples)
    con.print("samples: " + ", ".join(str(p) for p in written))
    for bp in tk_blueprints.list_blueprints():
        if bp.sample is None or not (samples / bp.sample).exists():
            continue
        con.print(f"\n[bold]{bp.name}[/bold] on {samples / bp.sample}")
        result = tk_notebooks.run_notebook(
            samples / bp.sample,
            bp.name,
            warehouse=warehouse,
            output_dir=output_dir,
            return_frame=False,
        )
        _print_result(result)
    con.print(f'\nwarehouse: {warehouse}  (try: tracer query "SELECT * FROM runs")')
    con.print(
        'predictions: tracer query "SELECT * FROM predictions_customer_churn LIMIT 5"; '
        "score a new file: tracer predict RUN_ID FILE"
    )
    con.print(
        f"processed Parquet: data/processed/   raw records (bronze): data/bronze/   reports: {output_dir}/"
    )


@app.command()
@friendly
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder to copy the notebooks and templates into.")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite copies you have edited.")
    ] = False,
) -> None:
    """Copy the notebooks and report templates into DIR to edit them (edited copies are kept)."""
    kept = []
    for sub in ("notebooks", "templates"):
        src_dir = resource_path(sub)
        for src in sorted(src_dir.rglob("*")):
            if src.is_dir() or ".ipynb_checkpoints" in src.parts:
                continue
            dest = directory / sub / src.relative_to(src_dir)
            if dest.exists() and dest.read_bytes() != src.read_bytes() and not force:
                kept.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        typer.echo(f"copied {sub}/ to {directory / sub}")
    for dest in kept:
        typer.echo(f"kept your edited {dest} (--force overwrites it)")
    typer.echo(
        f"run an edited notebook with: tracer run FILE -b BLUEPRINT --notebook "
        f"{directory / 'notebooks' / 'blueprint.ipynb'}"
    )


@app.command()
@friendly
@with_read_flags
def infer(
    input: Annotated[
        str,
        typer.Argument(
            help="The file to draft from, a database URL (--table/--query) or an API URL."
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="The blueprint's name (default: the file's stem).")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="The column that identifies a row.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the draft here (blueprints/NAME.yaml) instead of printing it."
        ),
    ] = None,
    force: ForceOpt = False,
    secret_param: SecretParamOpt = None,
    read_flags: dict[str, Any] | None = None,
) -> None:
    """Draft a contract from the data: kinds, required, unique key, ranges, allowed values, formats."""
    if out is not None and out.exists() and not force:
        raise ConfigError(f"--out {out} exists; add --force to overwrite it")
    if out is not None and not tk_contract.is_contract_path(out):
        raise ConfigError(f"--out {out}: a contract is a .yaml or .yml file")
    cfg = build_config(None, secrets=secret_param, read_flags=read_flags)
    name = name or (out.stem if out is not None else None)  # the file and its blueprint agree
    text = tk_infer.infer(_source(input), name=name, key=key, config=cfg)
    if out is None:
        typer.echo(text, nl=False)
        return
    tk_writing.write_text_file(out, text)
    drafted = tk_contract.parse_contract(text, out)
    found = out.resolve().parent == (Path.cwd() / "blueprints").resolve()
    _console().print(
        f"wrote {out}: {len(drafted.fields)} fields; check it, then: "
        f"tracer run {redact(input)} -b {drafted.name if found else out}",
        markup=False,
    )


@app.command()
@friendly
def compare(
    run_a: Annotated[str, typer.Argument(help="The earlier run (`tracer runs`).")],
    run_b: Annotated[str, typer.Argument(help="The later run.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the comparison as an HTML page.")
    ] = None,
    force: ForceOpt = False,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """What changed from RUN_A to RUN_B: columns, counts, score, rules' failed shares, drift."""
    from rich.table import Table

    found = tk_compare.compare(run_a, run_b, warehouse=warehouse)
    if out is not None:
        found.write_html(out, force=force)
    for title, rows, columns in found.sections():
        table = Table(title=title)
        for col in columns:
            table.add_column(col)
        for r in rows:
            table.add_row(*(_cell(r.get(c)) for c in columns))
        if rows:
            _print_table(table)
        else:
            _console().print(f"{title}: no change" if title == "Columns" else f"{title}: none")
    if out is not None:
        _console().print(f"wrote {out}", markup=False)


@app.command()
@friendly
def history(
    dataset: Annotated[str, typer.Argument(help="The dataset (`tracer runs` shows them).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the history page here (.html, self-contained)."),
    ] = None,
    force: ForceOpt = False,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """A dataset's runs: score and parts, rows, gate failures and drift, run by run."""
    from rich.table import Table

    zone = tk_cron.server_timezone(tk_project.load_project_file(Path.cwd()).server.timezone)
    frame = tk_history.history(dataset, warehouse=warehouse)
    if out is not None:
        tk_history.write_history_page(out, dataset, warehouse=warehouse, force=force, zone=zone)
    table = Table(title=f"{dataset}: {frame.height} run(s), times in {zone}")
    columns = ("started", "run", "state", "score", "rows in", "quarantined", "drift (PSI)")
    for col in columns:
        table.add_column(col)
    for r in frame.iter_rows(named=True):
        gate = " (gate failed)" if r["gate_failed"] else ""
        drift = f"{r['drift_psi']:.2f} {r['drift_column']}" if r["drift_psi"] is not None else ""
        started = (
            r["started_at"].replace(tzinfo=dt.UTC).astimezone(zone) if r["started_at"] else None
        )
        table.add_row(
            f"{started:%Y-%m-%d %H:%M}" if started else "",
            r["run_id"],
            r["state"] + gate,
            _cell(r["quality_score"]),
            _cell(r["rows_in"]),
            _cell(r["rows_quarantined"]),
            drift,
        )
    _print_table(table)
    if out is not None:
        _console().print(f"wrote {out}", markup=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@contract_app.command("schema")
@friendly
def contract_schema() -> None:
    """Print the JSON Schema of a contract file (point your editor's YAML support at it)."""
    typer.echo(json.dumps(tk_contract.contract_schema(), indent=1))


@contract_app.command("check")
@friendly
def contract_check(
    path: Annotated[Path, typer.Argument(help="The contract file (.yaml, .yml, .json, .toml).")],
) -> None:
    """Read a contract file and say what it declares (or the one line that is wrong in it)."""
    bp = tk_contract.load_contract(path)
    con = _console()
    con.print(f"{path}: blueprint {bp.name!r}: {bp.description}", markup=False)
    for f in bp.fields:
        words = ", ".join(
            [
                *(["required"] if f.required else []),
                *tk_blueprints.constraint_words(f),
                *(["personal"] if f.pii else []),
            ]
        )
        con.print(f"  field   {f.name}: {f.kind}{', ' + words if words else ''}", markup=False)
    for r in bp.rules:
        con.print(f"  rule    {r.reason} ({r.severity}): {r.description}", markup=False)
    for feat in bp.features:
        con.print(f"  feature {feat.name} ({feat.dtype}) = {feat.formula}", markup=False)
    engine = (
        "polars and Spark" if bp.spark is not None else "polars only (windows over several keys)"
    )
    con.print(f"  runs on {engine}", markup=False)


class _ConsoleLines(logging.Handler):
    """Short human lines on stdout (stderr is kept for the one-line error)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            return  # `friendly` prints the error once
        prefix = "warning: " if record.levelno == logging.WARNING else "  "
        typer.echo(prefix + record.getMessage())


def _configure() -> None:
    """What every command runs with: CLI wording, memory returned, log lines as output."""
    os.environ["TRACER_INTERFACE"] = "cli"  # messages name CLI flags (notebook kernels inherit it)
    release_freed_memory()  # before polars is imported (notebook kernels inherit it too)
    log = logging.getLogger("tracer_kit")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _ConsoleLines) for h in log.handlers):
        log.addHandler(_ConsoleLines())


@functools.cache
def _click_command() -> Any:
    """The click command of the app, built once per process (~50 ms each time otherwise)."""
    return typer.main.get_command(app)


def run_command(argv: list[str]) -> int:
    """Run ``tracer <argv>`` in this process; its exit code (a server's worker calls this)."""
    _configure()
    try:
        _click_command()(args=argv, prog_name="tracer")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def _name_of(info: typer.models.CommandInfo) -> str:
    """What ``tracer NAME`` calls a registered command (typer's own derivation)."""
    return info.name or typer.main.get_command_name(getattr(info.callback, "__name__", ""))


def command_names() -> frozenset[str]:
    """The names ``tracer NAME`` runs here: the commands and the groups (``runs``, ``contract``)."""
    commands = {_name_of(info) for info in app.registered_commands}
    return frozenset(commands | {info.name for info in app.registered_groups if info.name})


def _command_for(argv: list[str]) -> Any:
    """The click group holding only the command ``argv`` names, or the whole app's.

    Building the click command of every command inspects each signature (about 0.1 s of a
    cold ``tracer validate``); one command's is all that a command line runs. ``tracer``,
    ``tracer --help`` and an unknown name get the whole app (its listing, its suggestions).
    """
    name = argv[0] if argv else ""
    if name not in command_names():
        return _click_command()
    one = copy.copy(app)  # the same settings, prog name and help
    one.registered_commands = [info for info in app.registered_commands if _name_of(info) == name]
    one.registered_groups = [info for info in app.registered_groups if info.name == name]
    return typer.main.get_group(one)  # (a group even of one command: `tracer NAME ...` stays)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tracer`` console script (without the server's commands)."""
    argv = sys.argv[1:] if argv is None else argv
    _configure()
    _command_for(argv)(args=argv, prog_name="tracer")


if __name__ == "__main__":
    sys.exit(main())
