"""Notebook runner: execute ``notebooks/blueprint.ipynb`` headless with Papermill, export it to HTML.

The caller assigns the run id, passes absolute paths and JSON-like values only, and the
parameter names are checked against the notebook's ``parameters`` cell before Papermill
starts (Papermill itself only warns on unknown names). The kernel is the current Python
environment's own ``python3`` kernelspec.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tracer_kit._resources import resource_path
from tracer_kit.blueprints import get_blueprint
from tracer_kit.config import Config, config_to_jsonable, load_config
from tracer_kit.connections import is_database_url, is_url, parse_database_url, url_for_kernel
from tracer_kit.engine import Engine, resolve_engine
from tracer_kit.errors import (
    ConfigError,
    NotebookRunError,
    PipelineBugError,
    QualityGateError,
    TracerError,
    error_class,
)
from tracer_kit.kernels import (
    KERNEL,
    kernel_manager_logging_to,
    shut_down,
    take_warm_kernel,
    use_own_kernelspec,
)
from tracer_kit.lazy import lazy_module
from tracer_kit.quality import check_compatible
from tracer_kit.quality.transforms import key_for_kernel
from tracer_kit.record import RunRecord, RunResult
from tracer_kit.run import RunLifecycle
from tracer_kit.types import ACTIVE_STATES, Issue, RunState
from tracer_kit.warehouse import (
    DEFAULT_WAREHOUSE,
    dataset_name,
    end_run,
    new_run_id,
    note_record,
    open_warehouse,
    run_row,
)
from tracer_kit.workspace import DEFAULT_PROCESSED, DEFAULT_REPORTS

pipeline_module = lazy_module("tracer_kit.pipeline")

__all__ = [
    "KERNEL",
    "NOTEBOOK",
    "PARAMETERS",
    "check_parameters",
    "export_html",
    "notebook_path",
    "prepare_run",
    "readable_errors",
    "rerun",
    "result_from_warehouse",
    "run_batch",
    "run_notebook",
]

NOTEBOOK = "notebooks/blueprint.ipynb"
PARAMETERS = (
    "input_path",
    "blueprint",
    "run_id",
    "config",
    "output_dir",
    "warehouse",
    "engine",
    "master",
)


def _papermill() -> tuple[Any, type[Exception]]:
    """Papermill, imported only once a notebook will run (it takes seconds to import).

    jsonschema (under nbformat) builds an RFC 3987 grammar at import when the optional
    ``rfc3987_syntax`` package is present: 2.3 s here, for IRI format checks that notebook
    validation never makes. Hiding that optional module makes jsonschema skip them.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    return pm, PapermillExecutionError


def _notebook_file(config: Config) -> Path:
    """The notebook a run executes: the config's edited copy (``tracer init``) or the shipped one."""
    if not config.output.notebook:
        return notebook_path()
    path = Path(config.output.notebook).expanduser()
    if not path.is_file():
        msg = f"notebook {config.output.notebook} does not exist (copy one out with `tracer init DIR`)"
        raise ConfigError(msg, path=path)
    if path.suffix != ".ipynb":
        raise ConfigError(f"notebook {config.output.notebook} is not a .ipynb file", path=path)
    return path.resolve()


def notebook_path() -> Path:
    """The shipped Papermill template, ``blueprint.ipynb``."""
    return resource_path(NOTEBOOK)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    msg = (
        f"notebook parameter value {value!r} is not JSON-like (str, number, bool, None, list, dict)"
    )
    raise ConfigError(msg)


def check_parameters(
    parameters: dict[str, Any], notebook: str | Path | None = None
) -> dict[str, Any]:
    """Reject names the notebook does not declare; convert values to JSON-like types.

    Raises
    ------
    ConfigError
        Naming each unknown parameter and listing the declared ones.
    """
    pm, _ = _papermill()
    declared = set(pm.inspect_notebook(str(notebook or notebook_path())))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        msg = (
            f"unknown notebook parameter(s) {', '.join(map(repr, unknown))}; "
            f"the notebook declares {', '.join(sorted(declared))}"
        )
        raise ConfigError(msg)
    for name in parameters:
        if not name.isidentifier():
            raise ConfigError(f"notebook parameter name {name!r} is not an identifier")
    return {k: _jsonable(v) for k, v in parameters.items()}


def readable_errors(nb: Any) -> Any:
    """Replace each cell error's traceback by one readable block (``TRACER_DEBUG=1`` keeps them).

    A failed run's ``notebook.html`` then says what went wrong in a sentence (the
    :class:`TracerError` message), never as a Python traceback or a polars plan.
    """
    import html

    import nbformat

    for cell in nb.cells:
        for i, out in enumerate(cell.get("outputs", [])):
            if out.get("output_type") != "error":
                continue
            first = (out.get("evalue") or "").strip().splitlines()
            text = first[0] if first else out.get("ename", "error")
            block = (
                "<div class='tracer-error' style='border-left:6px solid #c62828;"
                "background:#fdecea;padding:8px 14px'><b>The run stopped.</b> "
                f"{html.escape(text)}</div>"
            )
            cell.outputs[i] = nbformat.v4.new_output(
                "display_data", data={"text/html": block, "text/plain": text}
            )
    return nb


def export_html(notebook: str | Path, dest: str | Path) -> Path:
    """Export an executed notebook to self-contained HTML without code cells (opens offline)."""
    _papermill()  # nbformat through the same quick import
    import nbformat
    from nbconvert import HTMLExporter

    template = resource_path("templates/offline.html.j2")
    exporter = HTMLExporter(
        template_file=template.name,
        extra_template_paths=[str(template.parent)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = nbformat.read(str(notebook), as_version=4)
    if not os.environ.get("TRACER_DEBUG"):
        readable_errors(nb)
    body, _ = exporter.from_notebook_node(nb)
    dest = Path(dest)
    dest.write_text(body, encoding="utf-8")
    return dest


def _under(folder: Path, path: str | Path) -> Path:
    """``path`` as an absolute path, relative ones taken from ``folder``."""
    path = Path(path)
    return path if path.is_absolute() else (folder / path).resolve()


def _execute(
    template: Path,
    executed: Path,
    params: dict[str, Any],
    *,
    cwd: Path,
    timeout: float | None,
    config: Config,
) -> BaseException | None:
    """Papermill runs the notebook on our own kernel; the notebook's failure, if any."""
    pm, PapermillExecutionError = _papermill()
    use_own_kernelspec()
    log = executed.with_name("kernel.log")
    warm = None
    try:
        with key_for_kernel(config):  # the key reaches the kernel, never the notebook
            warm = take_warm_kernel(cwd, log)  # (None unless started ahead for this run)
            pm.execute_notebook(
                str(template),
                str(executed),
                parameters=params,
                kernel_name=KERNEL,
                kernel_manager_class=kernel_manager_logging_to(log),
                **({"km": warm} if warm is not None else {}),
                cwd=str(cwd),
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,  # (written once at the end: -0.3 s a run)
                execution_timeout=timeout,
                # keep ipykernel's start-up warnings (TCP without encryption) off the terminal
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
    except PapermillExecutionError as exc:
        return exc
    finally:
        if warm is not None:  # used for this one run, then discarded
            shut_down(warm)
    return None


def run_notebook(  # noqa: PLR0913 - a source, a blueprint and the options the CLI offers
    path: str | Path,
    blueprint: str,
    *,
    config: Config | dict[str, Any] | str | Path | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    output_dir: str | Path = DEFAULT_REPORTS,
    cwd: str | Path | None = None,
    run_id: str | None = None,
    timeout: float | None = None,
    return_frame: bool = True,
    engine: str = "polars",
    master: str | None = None,
) -> Any:
    """Run the blueprint notebook on one file with Papermill; export it to ``notebook.html``.

    Parameters
    ----------
    path
        The input file.
    blueprint
        A blueprint name.
    config
        A :class:`Config`, a dict of its fields, or a JSON/YAML file.
    warehouse, output_dir
        As for :func:`run_pipeline`; made absolute before they reach the notebook.
    cwd
        The kernel's working folder (processed Parquet goes under ``<cwd>/data/processed``);
        default the current folder.
    run_id
        Assign the run id; default a new one.
    timeout
        Per-cell execution timeout in seconds (default none).
    return_frame
        Read the processed rows back from the run's Parquet into ``RunResult.frame``.
    engine, master
        ``engine="spark"`` runs the notebook's pipeline on Spark (a new session on
        ``master`` in the kernel, default ``local[2]``); ``path`` may then be a URI.

    Returns
    -------
    RunResult
        Read back from the warehouse, with the processed frame from the run's Parquet.

    Raises
    ------
    QualityGateError
        When the notebook's run stopped at the quality gate.
    NotebookRunError
        When any other cell failed; the message carries the cell's error.
    """
    bp = get_blueprint(blueprint)
    cfg = load_config(config)
    cwd = Path(cwd or Path.cwd()).resolve()
    run_id = run_id or new_run_id()
    warehouse, output_dir = _under(cwd, warehouse), _under(cwd, output_dir)
    chosen = resolve_engine(engine, master=master)  # (Spark starts in the kernel, not here)
    input_path = _notebook_input(path, uris=chosen.reads_uris)
    run_dir = output_dir / run_id
    executed = run_dir / "blueprint.ipynb"
    life = RunLifecycle(warehouse, run_id)
    with life:  # a failure before the kernel takes over (or Ctrl-C) ends the run here
        open_warehouse(warehouse)
        life.start(_pending_run(run_id, bp.name, cfg, path, input_path), RunState.PENDING)
        if not is_url(path):  # (a database table or an API is read once, in the kernel)
            _check_before_kernel(input_path, bp, cfg, chosen)
        template = _notebook_file(cfg)
        params = check_parameters(
            {
                "input_path": input_path,
                "blueprint": bp.origin or bp.name,  # a contract by its file: found from any folder
                "run_id": run_id,
                "config": config_to_jsonable(cfg),
                "output_dir": output_dir,
                "warehouse": warehouse,
                **chosen.notebook_parameters(),
            },
            template,
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        with url_for_kernel(path):  # the password reaches the kernel, never the notebook
            failure = _execute(template, executed, params, cwd=cwd, timeout=timeout, config=cfg)
        life.handed_over()  # the kernel's run recorded how it ended
    if executed.exists():
        export_html(executed, run_dir / "notebook.html")
    if failure is not None:
        _raise_from_notebook(failure, warehouse, run_id, executed)
    return result_from_warehouse(
        run_id, warehouse=warehouse, notebook=executed, with_frame=return_frame
    )


def _pending_run(
    run_id: str, blueprint: str, cfg: Config, path: str | Path, input_path: Any
) -> dict[str, Any]:
    """The ``runs`` row of a notebook run before its kernel starts."""
    return {
        "run_id": run_id,
        "blueprint": blueprint,
        "dataset": cfg.output.dataset
        or dataset_name(path, table=cfg.read.table, query=cfg.read.query),
        "input_path": str(input_path),
        "params": RunRecord(config=config_to_jsonable(cfg)),
    }


def _notebook_input(path: str | Path, *, uris: bool) -> Any:
    """What the notebook is given as ``input_path``: an absolute path, or a URL as written.

    A database URL loses its password (the kernel gets it through :func:`url_for_kernel`).
    """
    if is_database_url(path):
        return parse_database_url(path).display()
    if is_url(path) or (uris and "://" in str(path)):
        return str(path)
    local = _under(Path.cwd(), path)
    if not uris and not local.exists():
        raise TracerError(f"{path}: no such file", path=path)
    return local


def _check_before_kernel(path: Any, bp: Any, cfg: Config, engine: Engine) -> None:
    """A bad file or mapping fails here, before any kernel starts; an engine that reads
    the source in the kernel (Spark) checks what it can (its blueprint's Spark plan).
    """  # noqa: D205
    engine.check_run(bp, path, predicting=False)
    if not engine.reads_uris:
        check_compatible(path, bp, cfg)


def _raise_from_notebook(exc: Any, warehouse: Path, run_id: str, executed: Path) -> None:
    row = None
    with contextlib.suppress(TracerError):
        row = run_row(run_id, warehouse=warehouse)
    if row is not None and row["state"] in ACTIVE_STATES:
        with contextlib.suppress(Exception):
            end_run(warehouse, run_id, "FAILED", error=f"{exc.ename}: {exc.evalue}")
    cls = error_class(exc.ename)
    if cls is not None and issubclass(cls, QualityGateError):
        issues = [Issue(**i) for i in row["issues"]] if row else []
        raise QualityGateError(exc.evalue, issues=issues) from None
    msg = f"{exc.evalue} (notebook {executed}, cell {exc.exec_count}, {exc.ename})"
    if cls is not None and not issubclass(cls, PipelineBugError):
        msg = exc.evalue  # a tracer-kit error already says what is wrong, in one sentence
    err = NotebookRunError(msg)
    err.ename = exc.ename  # type: ignore[attr-defined]
    raise err from None


def result_from_warehouse(
    run_id: str,
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    notebook: Path | None = None,
    with_frame: bool = True,
) -> Any:
    """Rebuild a :class:`RunResult` from the runs table (and the run's Parquet)."""
    import polars as pl

    row = run_row(run_id, warehouse=warehouse)
    outputs = {k: str(v) for k, v in row["outputs"].items()}
    if notebook is not None:
        outputs["notebook"] = str(notebook)
        outputs["notebook_html"] = str(notebook.with_name("notebook.html"))
    frame = None
    parquet = outputs.get("parquet")
    if with_frame and row["state"] == "COMPLETED" and parquet and Path(parquet).exists():
        frame = pl.read_parquet(parquet)
    features: list[str] = []
    with contextlib.suppress(TracerError):
        features = (
            list(get_blueprint(row["blueprint"]).feature_names)
            if row["state"] == "COMPLETED"
            else []
        )
    return RunResult(
        run_id=row["run_id"],
        blueprint=row["blueprint"],
        state=row["state"],
        input_path=row["input_path"] or "",
        dataset=row.get("dataset"),
        input_sha256=row["input_sha256"],
        rows_in=row["rows_in"] or 0,
        rows_valid=row["rows_valid"] or 0,
        rows_quarantined=row["rows_quarantined"] or 0,
        rows_out=row["rows_out"] or 0,
        quality_score=row["quality_score"],
        score_parts=row["score_parts"] or {},
        issues=row["issues"],
        features_created=features,
        stage_seconds=row["stage_seconds"],
        record=row["record"],
        outputs=outputs,
        error=row["error"],
        frame=frame,
    )


def prepare_run(
    *,
    input_path: str | None,
    blueprint: str,
    run_id: str | None,
    config: dict[str, Any] | None,
    output_dir: str | None,
    warehouse: str | None,
    engine: str = "polars",
    master: str | None = None,
) -> dict[str, Any]:
    """Turn the notebook's parameters into :func:`run_pipeline` arguments.

    ``engine="spark"`` runs on the notebook's ``spark`` session when one exists (Databricks,
    a pyspark kernel), else on a new one on ``master`` (default ``local[2]``).

    With the notebook's own defaults (``None``), the input is the blueprint's tiny sample
    shipped in the package and the warehouse and reports go to a temporary folder, so
    running the notebook as is (nbval) never touches ``data/warehouse.duckdb``.
    """
    bp = get_blueprint(blueprint)
    scratch = None
    if output_dir is None or warehouse is None:
        scratch = Path(tempfile.mkdtemp(prefix="tracer-notebook-"))
        atexit.register(shutil.rmtree, scratch, True)  # removed when the kernel exits
    if input_path is None:
        if bp.sample is None:
            msg = f"blueprint {bp.name!r} ships no sample; set input_path"
            raise ConfigError(msg)
        input_path = str(resource_path(f"tracer_kit/samples/{Path(bp.sample).stem}_tiny.csv"))
    args: dict[str, Any] = {
        "path": input_path,
        "blueprint": bp.origin or bp.name,
        "config": config or {},
        "run_id": run_id,
        "warehouse": warehouse or str(scratch / "warehouse.duckdb"),
        "output_dir": output_dir or str(scratch / "reports"),
        "return_frame": False,  # the notebook reads samples from the Parquet, never every row
    }
    if scratch is not None:
        args["processed_dir"] = str(scratch / "data" / "processed")
    args["engine"] = resolve_engine(engine, master=master)
    return args


def run_batch(
    paths: Sequence[str | Path],
    blueprint: str,
    *,
    max_concurrent: int = 3,
    config: Config | dict[str, Any] | str | Path | None = None,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    output_dir: str | Path = DEFAULT_REPORTS,
    cwd: str | Path | None = None,
    progress: bool = True,
) -> list[Any]:
    """Run the notebook on many files, at most ``max_concurrent`` kernels at a time.

    One failing file does not stop the others: its result has state FAILED and the error.
    Results come back in the order of ``paths``, without ``frame`` (each run's processed
    rows are in the Parquet named in its ``outputs``).
    """
    from tqdm.auto import tqdm

    if max_concurrent < 1:
        raise ConfigError(f"max_concurrent={max_concurrent} should be at least 1")
    get_blueprint(blueprint)
    paths = [Path(p) for p in paths]
    results: list[Any] = [None] * len(paths)
    started: dict[int, float] = {}

    def one(i: int) -> Any:
        started[i] = time.perf_counter()
        run_id = new_run_id()
        try:
            return run_notebook(
                paths[i],
                blueprint,
                config=config,
                warehouse=warehouse,
                output_dir=output_dir,
                cwd=cwd,
                run_id=run_id,
                return_frame=False,  # a batch keeps its summary, not every file's rows
            )
        except TracerError as exc:
            try:
                res = result_from_warehouse(run_id, warehouse=warehouse, with_frame=False)
                return res.model_copy(update={"error": res.error or str(exc), "state": "FAILED"})
            except TracerError:
                return RunResult(
                    run_id=run_id,
                    blueprint=blueprint,
                    state="FAILED",
                    input_path=str(paths[i]),
                    error=str(exc),
                )

    with ThreadPoolExecutor(max_workers=max_concurrent) as pool:
        futures = {pool.submit(one, i): i for i in range(len(paths))}
        bar = tqdm(total=len(paths), desc=f"batch {blueprint}", unit="file", disable=not progress)
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            results[i].stage_seconds.setdefault("total", round(time.perf_counter() - started[i], 3))
            bar.update(1)
        bar.close()
    return results


def rerun(
    run_id: str,
    *,
    warehouse: str | Path = DEFAULT_WAREHOUSE,
    new_run_id: str | None = None,
    progress: Any = None,
) -> RunResult:
    """Run a recorded run again with its stored parameters (same run date and reference date).

    A run that went through a notebook goes through the same notebook again; the new run
    records which run it repeats (``record.rerun_of``).

    Parameters
    ----------
    run_id
        The run to repeat (``tracer runs`` lists them).
    warehouse
        The warehouse it is recorded in.
    new_run_id
        Assign the new run's id (default a new one).
    progress
        Called with (stage, index, total) as an in-process rerun's stages start.
    """
    row = run_row(run_id, warehouse=warehouse)
    record = row["record"]
    cfg = dict(record.config)
    cfg["reference_date"] = record.reference_date or cfg.get("reference_date")
    cfg["run_date"] = record.run_date or cfg.get("run_date")
    report = Path(row["outputs"].get("report", ""))
    if (report.parent / "blueprint.ipynb").is_file():
        result = run_notebook(
            row["input_path"],
            row["blueprint"],
            config=cfg,
            warehouse=warehouse,
            output_dir=record.output_dir or str(report.parent.parent),
            run_id=new_run_id,
            return_frame=False,
        )
    else:
        result = pipeline_module.run_pipeline(
            row["input_path"],
            row["blueprint"],
            config=cfg,
            warehouse=warehouse,
            output_dir=record.output_dir or DEFAULT_REPORTS,
            processed_dir=record.processed_dir or DEFAULT_PROCESSED,
            run_date=record.run_date,
            run_id=new_run_id,
            return_frame=False,
            progress=progress,
        )
    note_record(warehouse, result.run_id, rerun_of=run_id)
    return result
