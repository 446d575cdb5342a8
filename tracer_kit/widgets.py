"""Widgets: the interactive workbench (file picker, upload, blueprint, options, Run, progress, results).

``tracer_kit.widgets.workbench()`` returns a :class:`Workbench`; display it in JupyterLab.
Everything it does goes through :func:`tracer_kit.run_pipeline`; errors show as one
readable line in the UI, never a traceback.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import ipywidgets as w

from tracer_kit.blueprints import get_blueprint, list_blueprints
from tracer_kit.errors import TracerError
from tracer_kit.quality import ISSUE_COLUMNS
from tracer_kit.report import html_table

EXTENSIONS = (
    ".csv",
    ".tsv",
    ".txt",
    ".psv",
    ".json",
    ".ndjson",
    ".jsonl",
    ".parquet",
    ".pq",
    ".xlsx",
    ".xml",
    ".gz",
    ".zst",
)
SKIP_DIRS = {"processed", "staging", ".ipynb_checkpoints"}


def sanitise_filename(name: str) -> str:
    """A safe file name for an upload: no folders, only letters, digits, ``._-``; never empty or hidden."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[:120]


def find_inputs(data_dir: str | Path) -> list[Path]:
    """Files under ``data_dir`` that tracer-kit can read, skipping its own output folders."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        if (
            path.is_file()
            and path.suffix.lower() in EXTENSIONS
            and not SKIP_DIRS & set(path.relative_to(root).parts)
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
        warehouse: str | Path = "data/warehouse.duckdb",
        output_dir: str | Path = "reports",
        processed_dir: str | Path = "data/processed",
    ) -> None:
        from tracer_kit.pipeline import STAGES

        self.data_dir = Path(data_dir)
        self.warehouse, self.output_dir, self.processed_dir = warehouse, output_dir, processed_dir
        self.result: Any = None
        self._column_cache: dict[tuple[str, int, int], list[str]] = {}
        self.stages = STAGES
        self.file = w.Dropdown(description="File", layout=w.Layout(width="520px"))
        self.refresh = w.Button(
            description="Refresh", icon="refresh", layout=w.Layout(width="100px")
        )
        self.upload = w.FileUpload(
            description="Upload", accept=",".join(EXTENSIONS), multiple=False
        )
        self.blueprint = w.Dropdown(
            description="Blueprint",
            options=[bp.name for bp in list_blueprints()],
            layout=w.Layout(width="520px"),
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
        self.progress = w.IntProgress(value=0, min=0, max=len(STAGES), description="Progress")
        self.stage = w.Label(value="")
        self.error = w.HTML()
        self.summary = w.HTML()
        self.issues = w.HTML()
        self.sample = w.HTML()
        self.charts = w.HTML()
        self.features = w.HTML()
        self.report_link = w.HTML()
        self.tabs = w.Tab(
            children=[
                self.summary,
                self.issues,
                self.sample,
                self.charts,
                self.features,
                self.report_link,
            ]
        )
        for i, title in enumerate(
            ["Summary", "Issues", "Sample rows", "Charts", "Features", "Report"]
        ):
            self.tabs.set_title(i, title)
        self.refresh.on_click(lambda _: self.refresh_files())
        self.upload.observe(self._on_upload, names="value")
        self.blueprint.observe(lambda _: self.check(), names="value")
        self.file.observe(lambda _: self.check(), names="value")
        self.column_map.observe(lambda _: self.check(), names="value")
        self.run.on_click(lambda _: self.start())
        options = w.HBox(
            [self.missing, self.outliers, self.encoding, self.scaling],
            layout=w.Layout(flex_flow="row wrap"),
        )
        super().__init__(
            [
                w.HBox([self.file, self.refresh, self.upload]),
                w.HBox([self.blueprint]),
                self.fields,
                self.compatibility,
                w.HBox([self.column_map, self.reference_date]),
                options,
                w.HBox([self.run, self.progress, self.stage]),
                self.error,
                self.tabs,
            ]
        )
        self.refresh_files()
        self.check()

    # ----------------------------------------------------------------- inputs

    def refresh_files(self) -> None:
        """Re-list the readable files under the data folder."""
        files = find_inputs(self.data_dir)
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
        from tracer_kit.quality import match_columns

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
        if not self.file.value:
            self.compatibility.value = "Choose or upload a file."
            return False
        try:
            columns = self._columns(self.file.value)
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

    def _columns(self, path: str) -> list[str]:
        """The file's columns; read once per file version, not on every change of blueprint or map."""
        from tracer_kit.ingest import read_table

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
        return cfg

    # ----------------------------------------------------------------- running

    def _progress(self, stage: str, index: int, total: int) -> None:
        self.progress.value = index
        self.stage.value = f"{stage}…"

    def start(self) -> Any:
        """Run the pipeline on the chosen file; fill the result tabs or show the error."""
        from tracer_kit.errors import QualityGateError
        from tracer_kit.pipeline import run_pipeline

        self.error.value = ""
        self.progress.value = 0
        self.progress.bar_style = ""
        if not self.file.value:
            self.error.value = "<b style='color:#ab091e'>Choose or upload a file first.</b>"
            return None
        self.run.disabled = True
        try:
            self.result = run_pipeline(
                self.file.value,
                self.blueprint.value,
                config=self.config(),
                warehouse=self.warehouse,
                output_dir=self.output_dir,
                processed_dir=self.processed_dir,
                progress=self._progress,
                return_frame=False,
            )
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            self.stage.value = "done"
            self.show(self.result)
        except QualityGateError as exc:
            self.progress.bar_style = "danger"
            self.stage.value = "stopped at the quality gate"
            self.error.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
            self.issues.value = html_table(
                [i if isinstance(i, dict) else i.to_dict() for i in exc.issues],
                list(ISSUE_COLUMNS),
            )
        except TracerError as exc:
            self.progress.bar_style = "danger"
            self.stage.value = "failed"
            self.error.value = f"<b style='color:#ab091e'>{html.escape(str(exc))}</b>"
        except Exception as exc:  # noqa: BLE001 - the UI shows one line, never a traceback
            self.progress.bar_style = "danger"
            self.stage.value = "failed"
            self.error.value = (
                f"<b style='color:#ab091e'>internal error: {html.escape(type(exc).__name__)}: "
                f"{html.escape(str(exc))}</b>"
            )
        finally:
            self.run.disabled = False
        return self.result

    def show(self, result: Any) -> None:
        """Fill the result tabs from a :class:`RunResult`."""
        from tracer_kit.report import feature_chart, processed_sample, show_summary

        self.summary.value = show_summary(result).data
        self.issues.value = (
            html_table(result.issues, list(ISSUE_COLUMNS)) if result.issues else "No issues."
        )
        head = processed_sample(result)
        if head is not None:
            head = head.drop("extras", strict=False)
            self.sample.value = html_table(head.to_dicts(), head.columns)
        self.charts.value = feature_chart(result).data
        bp = get_blueprint(result.blueprint)
        self.features.value = html_table(
            [{"feature": f.name, "formula": f.formula} for f in bp.features], ["feature", "formula"]
        )
        report = result.outputs.get("report", "")
        self.report_link.value = (
            f"<a href='{html.escape(report)}' target='_blank'>Open the quality report</a>"
            f" <code>{html.escape(report)}</code>"
        )


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
        data_dir = root / "data"
        kwargs.setdefault("warehouse", root / "data" / "warehouse.duckdb")
        kwargs.setdefault("output_dir", root / "reports")
        kwargs.setdefault("processed_dir", root / "data" / "processed")
    return Workbench(data_dir, **kwargs)
