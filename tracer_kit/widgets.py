"""Widgets: the interactive workbench (file picker, upload, blueprint, options, Run, progress, results).

``tracer_kit.widgets.workbench()`` returns a :class:`Workbench`; display it in JupyterLab.
Everything it does goes through :func:`tracer_kit.run_pipeline`; errors show as one
readable line in the UI, never a traceback.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w

from tracer_kit.blueprints import blueprint_form, get_blueprint, list_blueprints
from tracer_kit.engine import POLARS, Engine, engine_names, resolve_engine
from tracer_kit.errors import QualityGateError, TracerError, speaking
from tracer_kit.failing import failing_rows, run_checks_failed
from tracer_kit.ingest import input_extensions, read_table
from tracer_kit.notebooks import result_from_warehouse
from tracer_kit.pipeline import STAGES, run_pipeline
from tracer_kit.quality import match_columns
from tracer_kit.report import (
    feature_chart,
    html_table,
    processed_sample,
    show_predictions,
    show_summary,
)
from tracer_kit.server.client import ServerError, ServerInfo, api_request, live_server
from tracer_kit.types import ISSUE_COLUMNS, Issue
from tracer_kit.workspace import DEFAULT_PROCESSED, DEFAULT_REPORTS, DEFAULT_WAREHOUSE, Workspace
from tracer_kit.writing import write_table

__all__ = [
    "EXTENSIONS",
    "OUTPUT_DIRS",
    "QUARANTINE_SHOWN",
    "Workbench",
    "find_inputs",
    "issues_html",
    "project_root",
    "sanitise_filename",
    "workbench",
]

EXTENSIONS = input_extensions()
# tracer-kit's own output folders under data/: never offered as inputs (uploads are inputs)
OUTPUT_DIRS = frozenset({"bronze", "processed", "staging", ".ipynb_checkpoints"})


def sanitise_filename(name: str) -> str:
    """A safe file name for an upload: no folders, only letters, digits, ``._-``; never empty or hidden."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[:120]


def find_inputs(data_dir: str | Path, *, exclude: Iterable[str | Path] = ()) -> list[Path]:
    """The user's files under ``data_dir`` that tracer-kit can read.

    tracer-kit's own outputs are left out: the ``bronze``, ``processed`` and ``staging``
    folders, the warehouse, and any folder in ``exclude`` (a workbench's own output folders
    when they live elsewhere under ``data_dir``).
    """
    root = Path(data_dir)
    if not root.is_dir():
        return []
    skipped = [Path(p).resolve() for p in exclude]
    found = []
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and path.suffix.lower() in EXTENSIONS
            and not OUTPUT_DIRS & set(path.relative_to(root).parts[:-1])
            and not any(path.resolve().is_relative_to(s) for s in skipped)
        ):
            found.append(path)
    return found


class Workbench(w.VBox):
    """The workbench UI. Its parts are attributes so tests (and users) can drive them.

    Parameters
    ----------
    data_dir
        Folder offered in the file picker; uploads go to ``<data_dir>/uploads/``.
    warehouse, output_dir, processed_dir
        Passed to :func:`run_pipeline`.
    """

    def __init__(
        self,
        data_dir: str | Path = "data",
        *,
        warehouse: str | Path = DEFAULT_WAREHOUSE,
        output_dir: str | Path = DEFAULT_REPORTS,
        processed_dir: str | Path = DEFAULT_PROCESSED,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.project = self.data_dir.resolve().parent  # (a server for it runs the jobs)
        self.warehouse, self.output_dir, self.processed_dir = warehouse, output_dir, processed_dir
        self.result: Any = None
        self._column_cache: dict[tuple[str, int, int], list[str]] = {}
        self.stages = STAGES
        self._inputs(STAGES)
        self._results()
        self._connect()
        super().__init__(self._rows())
        self.refresh_files()
        self.check()

    def _inputs(self, stages: tuple[str, ...]) -> None:
        """The controls: file, blueprint, mapping, options, Run and progress."""
        self.file = w.Dropdown(description="File", layout=w.Layout(width="520px"))
        self.refresh = w.Button(
            description="Refresh", icon="refresh", layout=w.Layout(width="100px")
        )
        self.upload = w.FileUpload(
            description="Upload", accept=",".join(EXTENSIONS), multiple=False
        )
        self._source_inputs()
        self.blueprint = w.Dropdown(
            description="Blueprint",
            options=[bp.name for bp in list_blueprints()],
            layout=w.Layout(width="520px"),
        )
        engines = engine_names()
        self.engine = w.Dropdown(
            description="Engine",
            options=engines,
            tooltip="spark: the kernel's Spark session, else a new local[2] one",
        )
        self.fields = w.HTML()
        self.compatibility = w.HTML()
        self.column_map = w.Text(
            description="Map",
            placeholder="SRC=DST, ... (e.g. CustomerID=customer_id)",
            layout=w.Layout(width="520px"),
        )
        self.reference_date = w.Text(
            description="Ref. date", placeholder="YYYY-MM-DD (default: from data)"
        )
        self.pii = w.Text(
            description="Personal",
            placeholder="fields holding personal data, never shown (e.g. email)",
            layout=w.Layout(width="520px"),
        )
        self.missing = w.Dropdown(
            description="Missing", options=["auto", "drop", "mean", "median", "mode"]
        )
        self.outliers = w.Dropdown(description="Outliers", options=["iqr", "zscore", "none"])
        self.encoding = w.Dropdown(
            description="Encoding", options=["auto", "onehot", "label", "target"]
        )
        self.scaling = w.Dropdown(
            description="Scaling", options=["robust", "standard", "minmax", "none"]
        )
        self.run = w.Button(description="Run", button_style="primary", icon="play")
        self.progress = w.IntProgress(value=0, min=0, max=len(stages), description="Progress")
        self.stage = w.Label(value="")

    def _source_inputs(self) -> None:
        """Where the rows come from: a file, a database table or query, or an HTTP JSON API."""
        wide = w.Layout(width="520px")
        self.source_kind = w.ToggleButtons(
            description="Source", options=["File", "Database", "API"], value="File"
        )
        self.db_url = w.Text(
            description="URL",
            placeholder="postgresql://user@host:5432/db, sqlite:///file.db, duckdb:///file.duckdb",
            layout=wide,
        )
        self.db_password = w.Password(
            description="Password", placeholder="(or PGPASSWORD, ~/.pgpass, TRACER_DB_URL)"
        )
        self.db_table = w.Text(description="Table", placeholder="schema.table", layout=wide)
        self.db_query = w.Textarea(
            description="Query",
            placeholder="SELECT ... ORDER BY id (instead of a table)",
            layout=wide,
        )
        self.api_url = w.Text(
            description="URL", placeholder="https://api.example.com/v1/customers", layout=wide
        )
        self.records_path = w.Text(description="Records", placeholder="data (dotted path)")
        self.paginate = w.Dropdown(
            description="Pages", options=["none", "next-link", "page", "cursor"], value="none"
        )
        self.rate_limit = w.BoundedFloatText(
            description="Req./s", value=0, min=0, max=1000, tooltip="0: no limit"
        )
        self.max_pages = w.BoundedIntText(
            description="Max pages", value=0, min=0, max=10**6, tooltip="0: every page"
        )
        self.token_env = w.Text(description="Token var", placeholder="CRM_TOKEN (bearer token)")
        self.source_box = w.VBox()

    def _source_rows(self) -> list[Any]:
        """The inputs of the chosen kind of source."""
        if self.source_kind.value == "Database":
            return [w.HBox([self.db_url, self.db_password]), self.db_table, self.db_query]
        if self.source_kind.value == "API":
            return [
                self.api_url,
                w.HBox([self.records_path, self.paginate]),
                w.HBox([self.rate_limit, self.max_pages, self.token_env]),
            ]
        return [w.HBox([self.file, self.refresh, self.upload])]

    def source(self) -> tuple[str, dict[str, Any]]:
        """The source to run and the config it needs (``table``/``query``, ``api``).

        A database password typed in the workbench goes into the URL in memory only: runs
        record and show the URL with ``***``.
        """
        kind = self.source_kind.value
        if kind == "File":
            return self.file.value or "", {}
        if kind == "API":
            api = {"paginate": self.paginate.value}
            api.update(
                (k, v)
                for k, v in {
                    "records_path": self.records_path.value.strip() or None,
                    "rate_limit": self.rate_limit.value or None,
                    "max_pages": self.max_pages.value or None,
                    "token_env": self.token_env.value.strip() or None,
                }.items()
                if v is not None
            )
            return self.api_url.value.strip(), {"api": api}
        return self._database_url(), self._database_config()

    def _database_url(self) -> str:
        from urllib.parse import quote, urlsplit, urlunsplit

        url, password = self.db_url.value.strip(), self.db_password.value
        parts = urlsplit(url)
        if not password or not url.startswith(("postgresql://", "postgres://")) or parts.password:
            return url
        user, _, host = parts.netloc.rpartition("@")  # (no user: libpq's default user)
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _database_config(self) -> dict[str, Any]:
        table, query = self.db_table.value.strip(), self.db_query.value.strip()
        return {"table": table or None, "query": query or None}

    def _results(self) -> None:
        """The result tabs."""
        self.error = w.HTML()
        self.server_jobs = w.HTML()  # the server's queued and running jobs, when one runs
        self.summary = w.HTML()
        self.issues = w.HTML()
        self.quarantine = w.HTML()
        self.rule_filter = w.Dropdown(
            description="Rule",
            options=[("every failing row", None)],
            layout=w.Layout(width="420px"),
        )
        self.save_path = w.Text(placeholder="failing_rows.csv", layout=w.Layout(width="260px"))
        self.save = w.Button(description="Save rows", icon="download", disabled=True)
        self.save_status = w.HTML()
        self.rule_filter.observe(lambda _: self._as_widget(self._show_failing), names="value")
        self.save.on_click(lambda _: self._as_widget(self.save_failing))
        self.sample = w.HTML()
        self.charts = w.HTML()
        self.predictions = w.HTML()
        self.features = w.HTML()
        self.report_link = w.HTML()
        self.open_report = w.Button(
            description="Open the quality report",
            icon="file",
            disabled=True,
            layout=w.Layout(width="240px"),
        )
        self.report_view = w.HTML()
        self.open_report.on_click(lambda _: self.show_report())
        tabs = {
            "Summary": self.summary,
            "Issues": self.issues,
            "Quarantine": w.VBox(
                [
                    w.HBox([self.rule_filter, self.save_path, self.save]),
                    self.save_status,
                    self.quarantine,
                ]
            ),
            "Sample rows": self.sample,
            "Charts": self.charts,
            "Predictions": self.predictions,
            "Features": self.features,
            "Report": w.VBox([w.HBox([self.open_report, self.report_link]), self.report_view]),
        }
        self.tabs = w.Tab(children=list(tabs.values()))
        for i, title in enumerate(tabs):
            self.tabs.set_title(i, title)

    def _connect(self) -> None:
        """What each control does."""
        self.refresh.on_click(lambda _: self.refresh_files())
        self.upload.observe(self._on_upload, names="value")
        self.blueprint.observe(lambda _: self._as_widget(self.check), names="value")
        self.file.observe(lambda _: self._as_widget(self.check), names="value")
        self.column_map.observe(lambda _: self._as_widget(self.check), names="value")
        self.run.on_click(lambda _: self._as_widget(self.start))
        self.source_kind.observe(lambda _: self._show_source(), names="value")
        for field in (self.db_url, self.db_table, self.db_query, self.api_url):
            field.observe(lambda _: self._as_widget(self.check), names="value")

    def _rows(self) -> list[Any]:
        """The workbench, top to bottom."""
        options = w.HBox(
            [self.missing, self.outliers, self.encoding, self.scaling],
            layout=w.Layout(flex_flow="row wrap"),
        )
        self.source_box.children = self._source_rows()
        return [
            self.source_kind,
            self.source_box,
            w.HBox([self.blueprint, self.engine]),
            self.fields,
            self.compatibility,
            w.HBox([self.column_map, self.reference_date]),
            self.pii,
            options,
            w.HBox([self.run, self.progress, self.stage]),
            self.server_jobs,
            self.error,
            self.tabs,
        ]

    # ----------------------------------------------------------------- inputs

    @staticmethod
    def _as_widget(action: Any) -> Any:
        """Run a UI action with messages that name the workbench's field labels."""
        with speaking("widget"):
            return action()

    def _show_source(self) -> None:
        self.source_box.children = self._source_rows()
        self._as_widget(self.check)

    def refresh_files(self) -> None:
        """Re-list the user's readable files under the data folder (never tracer-kit's outputs)."""
        space = Workspace.of(self.warehouse, self.processed_dir, self.output_dir)
        files = find_inputs(self.data_dir, exclude=space.outputs)
        current = self.file.value
        self.file.options = [(str(p.relative_to(self.data_dir)), str(p)) for p in files]
        if current in {str(p) for p in files}:
            self.file.value = current
        elif files:
            self.file.value = str(files[0])

    def _on_upload(self, change: dict[str, Any]) -> None:
        for item in change["new"] or ():
            name = sanitise_filename(item["name"])
            dest = self.data_dir / "uploads" / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(bytes(item["content"]))
            self.refresh_files()
            self.file.value = str(dest)

    def check(self) -> bool:
        """Show the blueprint's fields and whether the chosen file has them (with "did you mean")."""
        self.error.value = ""
        try:
            bp = get_blueprint(self.blueprint.value)
        except TracerError as exc:
            self.fields.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
            return False
        self.fields.value = (
            f"<i>{html.escape(bp.description)}</i><br>required: <code>{html.escape(', '.join(bp.required))}</code>"
            f" · optional: <code>{html.escape(', '.join(bp.optional) or '-')}</code>"
        )
        if self.source_kind.value != "File":
            return self._check_remote()
        if not self.file.value:
            self.compatibility.value = "Choose or upload a file."
            return False
        try:
            columns = self._columns(self.file.value)
            bp = blueprint_form(bp, columns, self._column_map())  # (churn's snapshot form)
            mapping = match_columns(columns, bp, self._column_map())
        except TracerError as exc:
            self.compatibility.value = (
                f"<span style='color:#ab091e'>✗ {html.escape(str(exc))}</span>"
            )
            return False
        mapped = ", ".join(f"{s} → {d}" for s, d in mapping.items())
        self.compatibility.value = "<span style='color:#0e5814'>✓ compatible</span>" + (
            f" (columns mapped: {html.escape(mapped)})" if mapped else ""
        )
        return True

    def _check_remote(self) -> bool:
        """A database or API source: what is still missing (its columns are checked at Run)."""
        source, extra = self.source()
        if not source:
            self.compatibility.value = f"Give the {self.source_kind.value.lower()}'s URL."
            return False
        if self.source_kind.value == "Database" and bool(extra["table"]) == bool(extra["query"]):
            self.compatibility.value = "Give a table or a query (one of them)."
            return False
        self.compatibility.value = (
            "The columns are checked against the blueprint when the run starts."
        )
        return True

    def _columns(self, path: str) -> list[str]:
        """The file's columns; read once per file version, not on every change of blueprint or map."""
        if not Path(path).is_file():
            return read_table(path).info.columns  # raises the one-line "no such file" error
        stat = Path(path).stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in self._column_cache:
            self._column_cache[key] = read_table(path, on_bad_lines="quarantine").info.columns
        return self._column_cache[key]

    def _column_map(self) -> dict[str, str]:
        pairs = [p.strip() for p in self.column_map.value.split(",") if p.strip()]
        return dict(p.split("=", 1) for p in pairs if "=" in p)

    def config(self) -> dict[str, Any]:
        """The run configuration the controls describe."""
        cfg: dict[str, Any] = {
            "pii": [f.strip() for f in self.pii.value.split(",") if f.strip()],
            "preprocess": {
                "missing": self.missing.value,
                "outliers": self.outliers.value,
                "encoding": self.encoding.value,
                "scaling": self.scaling.value,
            },
            "column_map": self._column_map(),
        }
        if self.reference_date.value.strip():
            cfg["reference_date"] = self.reference_date.value.strip()
        cfg.update(self.source()[1])
        return cfg

    # ----------------------------------------------------------------- running

    def _progress(self, stage: str, index: int, total: int) -> None:
        self.progress.value = index
        self.stage.value = f"{stage}…"

    def start(self) -> Any:
        """Run the pipeline on the chosen file; fill the result tabs or show the error."""
        self.error.value = ""
        self.progress.value = 0
        self.progress.bar_style = ""
        source = self.source()[0]
        if not source:
            what = "Choose or upload a file" if self.source_kind.value == "File" else "Give a URL"
            self.error.value = f"<b style='color:#ab091e'>{what} first.</b>"
            return None
        self.run.disabled = True
        try:
            engine = resolve_engine(self.engine.value)  # (resolved once; Spark starts in the run)
            server = live_server(self.project) if engine is POLARS else None  # (it runs polars)
            if server is not None:
                self.result = self._run_on_server(server, source)
            else:
                self.result = self._run_here(source, engine)
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            self.stage.value = "done"
            self.show(self.result)
        except QualityGateError as exc:
            self.progress.bar_style = "danger"
            self.stage.value = "stopped at the quality gate"
            self.error.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
            if exc.result is not None:
                self.result = exc.result
                self.show(exc.result)
            else:
                self.issues.value = issues_html(exc.issues, 0)
        except TracerError as exc:
            self.progress.bar_style = "danger"
            self.stage.value = "failed"
            self.error.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.stage.value = "failed"
            self.error.value = (
                f"<b style='color:#ab091e'>internal error: {html.escape(type(exc).__name__)}: "
                f"{html.escape(str(exc))}</b>"
            )
        finally:
            self.run.disabled = False
        return self.result

    def _run_here(self, source: str, engine: Engine) -> Any:
        """The run in this kernel."""
        self.stage.value = f"starting the {engine.name} engine…"
        return run_pipeline(
            source,
            self.blueprint.value,
            config=self.config(),
            warehouse=self.warehouse,
            output_dir=self.output_dir,
            processed_dir=self.processed_dir,
            progress=self._progress,
            return_frame=False,
            engine=engine,
        )

    def _run_on_server(self, server: ServerInfo, source: str) -> Any:
        """The run as a job of the project's server (a warm worker); its result from the warehouse.

        Raises what a run here would: QualityGateError with the result, or TracerError.
        """
        fields = {"blueprint": self.blueprint.value, "source": source}
        fields["config"] = json.dumps(self.config(), default=str)
        try:
            run_id = api_request(server, "POST", "/api/v1/runs", form=fields)["run_id"]
            body = self._follow(server, run_id)
        except ServerError as exc:
            raise TracerError(str(exc)) from None
        if body.get("error") and body.get("error_kind") not in (None, "quality_gate"):
            raise TracerError(body["error"])
        result = result_from_warehouse(run_id, warehouse=self.warehouse, with_frame=False)
        if body.get("error_kind") == "quality_gate":
            error = QualityGateError(body["error"])
            error.result = result
            raise error
        return result

    def _follow(self, server: ServerInfo, run_id: str) -> dict[str, Any]:
        """Poll the run until it ends, showing its stage and the server's other jobs."""
        while True:
            body = api_request(server, "GET", f"/api/v1/runs/{run_id}")
            if body["state"] in ("COMPLETED", "FAILED", "CANCELLED"):
                self.server_jobs.value = ""
                return body
            progress = body.get("progress") or {}
            if body["state"] == "PENDING":
                self.stage.value = f"queued on the server ({run_id})"
            elif progress.get("stage") in STAGES:
                self.progress.value = STAGES.index(progress["stage"])
                self.stage.value = f"{progress['stage']}… (on the server)"
            self.server_jobs.value = self._server_jobs_html(server)
            time.sleep(0.3)

    @staticmethod
    def _server_jobs_html(server: ServerInfo) -> str:
        """The server's queued and running runs, one line each (newest runs lead the list)."""
        page = api_request(server, "GET", "/api/v1/runs?limit=40")["runs"]
        lines = [
            f"<code>{html.escape(r['run_id'])}</code> {html.escape(r['blueprint'])} "
            f"<b>{r['state'].replace('_', ' ').lower()}</b>"
            for r in page
            if r["state"] in ("PENDING", "IN_PROGRESS")
        ]
        where = html.escape(server.url)
        return f"<div class='muted'>server {where}: " + ("; ".join(lines) or "idle") + "</div>"

    def show(self, result: Any) -> None:
        """Fill the result tabs from a :class:`RunResult` (a completed run or one stopped at the gate)."""
        self.summary.value = show_summary(result).data
        self.issues.value = issues_html(result.issues, result.rows_quarantined)
        self._fill_rule_filter(result)
        self.quarantine.value = self._quarantine_html(result)
        head = processed_sample(result)
        if head is not None:
            head = head.drop("extras", *result.record.personal, strict=False)
            self.sample.value = html_table(head.to_dicts(), head.columns)
        else:
            self.sample.value = "No processed rows (the run did not complete)."
        self.charts.value = feature_chart(result).data
        self.predictions.value = show_predictions(result, heading=True).data
        bp = get_blueprint(result.blueprint)
        self.features.value = html_table(
            [{"feature": f.name, "formula": f.formula} for f in bp.features], ["feature", "formula"]
        )
        report = result.outputs.get("report", "")
        self.open_report.disabled = not (report and Path(report).is_file())
        self.report_view.value = ""
        self.report_link.value = f" <code>{html.escape(report)}</code>"

    def _fill_rule_filter(self, result: Any) -> None:
        """The Quarantine tab's filter: every failing row, or one check on one column."""
        try:
            counts = run_checks_failed(result.run_id, warehouse=self.warehouse)
        except TracerError:
            counts = None
        options: list[tuple[str, Any]] = [("every failing row", None)]
        for r in counts.iter_rows(named=True) if counts is not None else []:
            on = f" on {r['column']}" if r["column"] else ""
            options.append((f"{r['check']}{on} ({r['rows']:,} rows)", (r["check"], r["column"])))
        self.rule_filter.options = options
        self.rule_filter.value = None
        self.save.disabled = len(options) == 1
        self.save_path.value = f"{result.run_id}-failing.csv"
        self.save_status.value = ""

    def _filter(self) -> tuple[str | None, str | None]:
        return self.rule_filter.value or (None, None)

    def _show_failing(self) -> None:
        if self.result is not None:
            self.quarantine.value = self._quarantine_html(self.result)

    def _quarantine_html(self, result: Any) -> str:
        check, column = self._filter()
        try:
            rows = failing_rows(
                result.run_id,
                check=check,
                column=column,
                limit=QUARANTINE_SHOWN + 1,
                warehouse=self.warehouse,
            )
        except TracerError as exc:
            return f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
        if rows.height == 0:
            return "No rows were quarantined."
        total = result.rows_quarantined if check is None else None
        rows = rows.head(QUARANTINE_SHOWN)
        counted = f"{total:,}" if total is not None else "these"
        shown = (
            f"the first {rows.height:,} of " if total is not None and rows.height < total else ""
        )
        return (
            f"<p><b class='quarantine-count'>{counted}</b> row(s) quarantined; {shown}"
            "them below, with every failure and the line in the file (personal values hidden).</p>"
            + html_table(rows.to_dicts(), rows.columns)
        )

    def save_failing(self) -> Path | None:
        """Write the rows the filter shows (all of them, personal values hidden) to the path given."""
        if self.result is None:
            return None
        check, column = self._filter()
        target = self.save_path.value.strip() or f"{self.result.run_id}-failing.csv"
        try:
            rows = failing_rows(
                self.result.run_id, check=check, column=column, warehouse=self.warehouse
            )
            written = write_table(rows, target, warehouse=self.warehouse)
        except TracerError as exc:
            self.save_status.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
            return None
        self.save_status.value = (
            f"wrote {rows.height:,} rows to <code>{html.escape(str(written))}</code>"
        )
        return written

    def show_report(self) -> None:
        """Show the run's self-contained ``report.html`` inside the workbench (Report tab)."""
        report = Path(self.result.outputs.get("report", "")) if self.result else None
        if report is None or not report.is_file():
            self.report_view.value = "The report has not been written."
            return
        page = html.escape(report.read_text(encoding="utf-8"), quote=True)
        self.report_view.value = (
            f"<iframe class='tracer-report' title='quality report' srcdoc=\"{page}\" "
            "style='width:100%;height:900px;border:1px solid #ccc'></iframe>"
        )


QUARANTINE_SHOWN = 100


def issues_html(issues: Sequence[Issue], rows_quarantined: int) -> str:
    """The Issues tab: the issues table, or why there is none (never "No issues" beside quarantined rows)."""
    if issues:
        return html_table(issues, list(ISSUE_COLUMNS))
    if rows_quarantined:
        return (
            f"No issue crossed a threshold, but {rows_quarantined:,} row(s) were quarantined: "
            "see the Quarantine tab for each row and its reasons."
        )
    return "No issues."


def project_root(start: str | Path | None = None) -> Path:
    """The folder holding ``data/``: the current one, or its parent (a notebook in ``notebooks/``)."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, here.parent):
        if (candidate / "data").is_dir():
            return candidate
    return here


def workbench(data_dir: str | Path | None = None, **kwargs: Any) -> Workbench:
    """The interactive workbench: pick or upload a file, pick a blueprint, press Run.

    With no ``data_dir``, the project folder is the current one or its parent (whichever
    has ``data/``), and the warehouse and reports go there too.

    Examples
    --------
    >>> from tracer_kit.widgets import workbench
    >>> workbench()  # doctest: +SKIP
    """
    if data_dir is None:
        root = project_root()
        space = Workspace.at(root)
        data_dir = root / "data"
        kwargs.setdefault("warehouse", space.warehouse)
        kwargs.setdefault("output_dir", space.reports)
        kwargs.setdefault("processed_dir", space.processed)
    return Workbench(data_dir, **kwargs)
