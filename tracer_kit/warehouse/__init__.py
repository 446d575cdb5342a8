"""The DuckDB warehouse: connections and locking, migrations, the one-transaction commit, reads.

Rules (``docs/contracts.md``, Locking): no connection outlives one short operation; lock
conflicts are retried with bounded backoff and then raise :class:`WarehouseBusyError`; a
run's outputs are staged on disk and recorded, with its final state, in a single
transaction (the commit point); on open, runs whose process died are marked FAILED and
their files removed. Only this package opens the warehouse file.

Bronze records and processed rows are not copied into DuckDB: each stays in the immutable
Parquet file written once by its run (``data/bronze/<bp>/``, ``data/processed/<bp>/``),
registered in ``bronze_files`` / ``processed_files``, and the views ``bronze_<bp>`` and
``<bp>_processed`` read them (bronze's ``raw`` JSON is built by DuckDB on read).

- :mod:`~tracer_kit.warehouse.connection`: :func:`connect`, locking, SQL helpers.
- :mod:`~tracer_kit.warehouse.migrations`: the schema, :func:`open_warehouse`, recovery.
- :mod:`~tracer_kit.warehouse.tables`: a blueprint's tables and views.
- :mod:`~tracer_kit.warehouse.runs`: a run's record and timings.
- :mod:`~tracer_kit.warehouse.commit`: :func:`commit_run`, the commit point.
- :mod:`~tracer_kit.warehouse.reads`: :func:`query`, :func:`run_row`, report inputs.
- :mod:`~tracer_kit.warehouse.replica`: :class:`Replica`, the server's copy for reads.
- :mod:`~tracer_kit.warehouse.removal`: :func:`delete_runs`, :func:`runs_to_prune`.
"""

from tracer_kit.warehouse.automation import (
    AUTOMATION_TABLES,
    delete_row,
    inbox_run_of,
    insert_row,
    table_rows,
    update_row,
)
from tracer_kit.warehouse.backup import (
    Backup,
    Rebuilt,
    Verification,
    backup,
    rebuild,
    restore,
    verify,
)
from tracer_kit.warehouse.commit import (
    BronzeFiles,
    ModelRecord,
    RunCommit,
    commit_run,
    run_quarantine_path,
    run_record_path,
)
from tracer_kit.warehouse.connection import (
    IDENT,
    LOCK_TIMEOUT,
    RUN_ID,
    check_run_id,
    connect,
    fetched_dicts,
    holding,
    holding_reads,
    is_base_table,
    new_run_id,
    quote_ident,
    reading_from,
    sql_name,
    sql_text,
    utcnow,
)
from tracer_kit.warehouse.migrations import MIGRATIONS, open_warehouse
from tracer_kit.warehouse.reads import (
    HIDDEN,
    QUARANTINE_VIEW_SCHEMA,
    ReportInputs,
    locked_down,
    protected_paths,
    quarantine_rows,
    query,
    recent_runs,
    reference_values,
    report_inputs,
    run_profiles,
    run_row,
)
from tracer_kit.warehouse.removal import (
    PruneGroup,
    Removal,
    delete_runs,
    prune_plan,
    runs_to_prune,
)
from tracer_kit.warehouse.replica import REPLICATED_TABLES, Replica
from tracer_kit.warehouse.run_locks import reading_run, removing_runs
from tracer_kit.warehouse.runs import (
    STATES,
    dataset_name,
    end_run,
    note_record,
    record_timings,
    start_run,
)
from tracer_kit.warehouse.tables import FAILURES_TYPE, ensure_blueprint_tables
from tracer_kit.workspace import DEFAULT_WAREHOUSE

__all__ = [
    "AUTOMATION_TABLES",
    "delete_row",
    "inbox_run_of",
    "insert_row",
    "table_rows",
    "update_row",
    "REPLICATED_TABLES",
    "Replica",
    "FAILURES_TYPE",
    "Backup",
    "BronzeFiles",
    "PruneGroup",
    "Rebuilt",
    "Verification",
    "backup",
    "rebuild",
    "restore",
    "verify",
    "locked_down",
    "protected_paths",
    "prune_plan",
    "reading_run",
    "run_quarantine_path",
    "run_record_path",
    "removing_runs",
    "DEFAULT_WAREHOUSE",
    "HIDDEN",
    "IDENT",
    "LOCK_TIMEOUT",
    "MIGRATIONS",
    "QUARANTINE_VIEW_SCHEMA",
    "RUN_ID",
    "Removal",
    "ModelRecord",
    "RunCommit",
    "ReportInputs",
    "STATES",
    "check_run_id",
    "commit_run",
    "connect",
    "fetched_dicts",
    "holding",
    "holding_reads",
    "is_base_table",
    "dataset_name",
    "delete_runs",
    "end_run",
    "ensure_blueprint_tables",
    "new_run_id",
    "note_record",
    "open_warehouse",
    "quarantine_rows",
    "query",
    "quote_ident",
    "reading_from",
    "recent_runs",
    "reference_values",
    "record_timings",
    "report_inputs",
    "run_profiles",
    "run_row",
    "runs_to_prune",
    "sql_name",
    "sql_text",
    "start_run",
    "utcnow",
]
