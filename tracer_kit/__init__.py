"""tracer-kit: turn business files into validated, feature-rich, stored and reported tables.

>>> import tracer_kit as tk
>>> result = tk.run_pipeline("data/samples/customers.csv", "customer_churn")  # doctest: +SKIP

Names are imported lazily so ``import tracer_kit`` stays fast, and importing it changes
nothing else in the process (no environment variable, warnings filter or module swap):
what a feature needs is set up when that feature is used.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

_EXPORTS = {
    "run_pipeline": "tracer_kit.pipeline",
    "predict": "tracer_kit.pipeline",
    "ModelConfig": "tracer_kit.config",
    "RunResult": "tracer_kit.record",
    "RunRecord": "tracer_kit.record",
    "RunOutputs": "tracer_kit.record",
    "Severity": "tracer_kit.types",
    "RunState": "tracer_kit.types",
    "run_notebook": "tracer_kit.notebooks",
    "run_batch": "tracer_kit.notebooks",
    "read_table": "tracer_kit.ingest",
    "Ingested": "tracer_kit.ingest",
    "ApiOptions": "tracer_kit.options",
    "ReadOptions": "tracer_kit.options",
    "FileInfo": "tracer_kit.ingest",
    "validate": "tracer_kit.quality",
    "profile": "tracer_kit.profiling",
    "QualityResult": "tracer_kit.quality",
    "Issue": "tracer_kit.types",
    "register_check": "tracer_kit.quality",
    "register_transform": "tracer_kit.quality",
    "reveal": "tracer_kit.personal",
    "backup": "tracer_kit.warehouse",
    "verify": "tracer_kit.warehouse",
    "restore": "tracer_kit.warehouse",
    "rebuild": "tracer_kit.warehouse",
    "Backup": "tracer_kit.warehouse",
    "Verification": "tracer_kit.warehouse",
    "Rebuilt": "tracer_kit.warehouse",
    "write_table": "tracer_kit.writing",
    "prune_plan": "tracer_kit.warehouse",
    "PruneGroup": "tracer_kit.warehouse",
    "Check": "tracer_kit.quality",
    "Transform": "tracer_kit.quality",
    "quality_report": "tracer_kit.report",
    "list_blueprints": "tracer_kit.blueprints",
    "get_blueprint": "tracer_kit.blueprints",
    "register_blueprint": "tracer_kit.blueprints",
    "Blueprint": "tracer_kit.blueprints",
    "Field": "tracer_kit.blueprints",
    "Feature": "tracer_kit.blueprints",
    "Rule": "tracer_kit.blueprints",
    "SparkPlan": "tracer_kit.blueprints",
    "spark_session": "tracer_kit.spark",
    "read_spark": "tracer_kit.spark",
    "stats": "tracer_kit.blueprints",
    "query": "tracer_kit.warehouse",
    "delete_runs": "tracer_kit.warehouse",
    "runs_to_prune": "tracer_kit.warehouse",
    "Removal": "tracer_kit.warehouse",
    "load_preprocessor": "tracer_kit.trained",
    "Config": "tracer_kit.config",
    "release_freed_memory": "tracer_kit.settings",
    "TracerError": "tracer_kit.errors",
    "IngestError": "tracer_kit.errors",
    "CompatibilityError": "tracer_kit.errors",
    "QualityGateError": "tracer_kit.errors",
    "WarehouseBusyError": "tracer_kit.errors",
    "NotebookRunError": "tracer_kit.errors",
    "ConfigError": "tracer_kit.errors",
    "ExportError": "tracer_kit.errors",
    "export": "tracer_kit.destinations",
    "Exported": "tracer_kit.destinations",
    "infer": "tracer_kit.drafting",
    "failing_rows": "tracer_kit.failing",
    "load_contract": "tracer_kit.blueprints",
    "contract_schema": "tracer_kit.blueprints",
    "DatasetRules": "tracer_kit.blueprints",
    "ModelSpec": "tracer_kit.blueprints",
    "compare": "tracer_kit.comparison",
    "Comparison": "tracer_kit.comparison",
    "history": "tracer_kit.history_page",
    "HistoryFrame": "tracer_kit.history_page",
    "Engine": "tracer_kit.engine",
    "resolve_engine": "tracer_kit.engine",
    "register_engine": "tracer_kit.engine",
}

__all__ = [
    "ApiOptions",
    "Blueprint",
    "CompatibilityError",
    "Config",
    "ConfigError",
    "ExportError",
    "Exported",
    "Feature",
    "Field",
    "FileInfo",
    "IngestError",
    "Ingested",
    "ModelConfig",
    "Issue",
    "NotebookRunError",
    "QualityGateError",
    "QualityResult",
    "ReadOptions",
    "Rule",
    "Removal",
    "RunOutputs",
    "RunRecord",
    "RunResult",
    "RunState",
    "Severity",
    "SparkPlan",
    "Check",
    "Transform",
    "TracerError",
    "WarehouseBusyError",
    "delete_runs",
    "export",
    "get_blueprint",
    "list_blueprints",
    "load_preprocessor",
    "predict",
    "profile",
    "quality_report",
    "query",
    "read_spark",
    "read_table",
    "register_blueprint",
    "register_check",
    "register_transform",
    "release_freed_memory",
    "reveal",
    "backup",
    "verify",
    "restore",
    "rebuild",
    "Backup",
    "Verification",
    "Rebuilt",
    "prune_plan",
    "PruneGroup",
    "write_table",
    "run_batch",
    "run_notebook",
    "run_pipeline",
    "runs_to_prune",
    "spark_session",
    "stats",
    "validate",
    "infer",
    "failing_rows",
    "load_contract",
    "contract_schema",
    "DatasetRules",
    "ModelSpec",
    "compare",
    "Comparison",
    "history",
    "HistoryFrame",
    "Engine",
    "resolve_engine",
    "register_engine",
]

if _typing.TYPE_CHECKING:
    from tracer_kit.blueprints import (
        Blueprint,
        DatasetRules,
        Feature,
        Field,
        ModelSpec,
        Rule,
        SparkPlan,
        contract_schema,
        get_blueprint,
        list_blueprints,
        load_contract,
        register_blueprint,
        stats,
    )
    from tracer_kit.comparison import Comparison, compare
    from tracer_kit.config import Config, ModelConfig
    from tracer_kit.destinations import Exported, export
    from tracer_kit.drafting import infer
    from tracer_kit.engine import Engine, register_engine, resolve_engine
    from tracer_kit.errors import (
        CompatibilityError,
        ConfigError,
        ExportError,
        IngestError,
        NotebookRunError,
        QualityGateError,
        TracerError,
        WarehouseBusyError,
    )
    from tracer_kit.failing import failing_rows
    from tracer_kit.history_page import HistoryFrame, history
    from tracer_kit.ingest import FileInfo, Ingested, read_table
    from tracer_kit.notebooks import run_batch, run_notebook
    from tracer_kit.options import ApiOptions, ReadOptions
    from tracer_kit.personal import reveal
    from tracer_kit.pipeline import predict, run_pipeline
    from tracer_kit.profiling import profile
    from tracer_kit.quality import (
        Check,
        QualityResult,
        Transform,
        register_check,
        register_transform,
        validate,
    )
    from tracer_kit.record import RunOutputs, RunRecord, RunResult
    from tracer_kit.report import quality_report
    from tracer_kit.settings import release_freed_memory
    from tracer_kit.spark import read_spark, spark_session
    from tracer_kit.trained import load_preprocessor
    from tracer_kit.types import Issue, RunState, Severity
    from tracer_kit.warehouse import (
        Backup,
        PruneGroup,
        Rebuilt,
        Removal,
        Verification,
        backup,
        delete_runs,
        prune_plan,
        query,
        rebuild,
        restore,
        runs_to_prune,
        verify,
    )
    from tracer_kit.writing import write_table


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'tracer_kit' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API only (what ``tab`` completes in a notebook)."""
    return sorted([*__all__, "__version__"])
