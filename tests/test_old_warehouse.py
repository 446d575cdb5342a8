"""A warehouse written by release 0.1.0 (commit 7b4be3c) opens, migrates, and its views answer.

The fixture is that release's own output over the three tiny samples (run date
2026-01-01), archived with its bronze and processed Parquet.
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile

import pytest

import tracer_kit as tk
from tracer_kit.warehouse import open_warehouse, run_row

from .conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "warehouse-0.1.0.tar.gz"


@pytest.fixture
def old_project(workdir):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(workdir, filter="data")
    return workdir


def test_release_warehouse_migrates_and_answers(old_project):
    before = tk.query("SELECT max(version) AS v FROM schema_version")["v"].item()
    assert before == 3
    open_warehouse("data/warehouse.duckdb")
    # 7: bronze_files.pages (an API source's pages, the records' positions); 8: file_hashes;
    # 9: each run's params rewritten as a typed RunRecord; 10: api_keys; 11: schedules, alerts
    assert tk.query("SELECT max(version) AS v FROM schema_version")["v"].item() == 11
    records = tk.query(
        "SELECT blueprint, json_extract_string(params, '$.schema_version') AS version, "
        "json_extract_string(params, '$.gate.passed') AS passed, "
        "json_extract_string(params, '$.run_date') AS run_date FROM runs ORDER BY blueprint"
    )
    assert records.rows() == [
        ("customer_churn", "1", "true", "2026-01-01"),
        ("price_optimization", "1", "true", "2026-01-01"),
        ("revenue_projection", "1", "true", "2026-01-01"),
    ]
    churn_run = tk.query("SELECT run_id FROM runs WHERE blueprint = 'customer_churn'").item()
    record = run_row(churn_run, warehouse="data/warehouse.duckdb")["record"]
    assert record.run_date == dt.date(2026, 1, 1) and record.gate.passed
    assert record.config["on_bad_lines"] == "quarantine" and record.column_map == {}
    # processed columns (migration 5) are read back from each blueprint's Parquet
    stored = tk.query("SELECT blueprint FROM processed_schemas ORDER BY 1")["blueprint"]
    assert stored.to_list() == ["customer_churn", "price_optimization", "revenue_projection"]
    runs = tk.query("SELECT blueprint, dataset, state, rows_in FROM runs ORDER BY blueprint")
    # a column added later (dataset) is filled from the input path of older runs
    assert runs.rows() == [
        ("customer_churn", "customers_tiny", "COMPLETED", 200),
        ("price_optimization", "prices_tiny", "COMPLETED", 196),
        ("revenue_projection", "revenue_tiny", "COMPLETED", 360),
    ]
    assert tk.query("SELECT count(*) AS n FROM customer_churn_latest")["n"].item() == 195
    assert tk.query("SELECT count(*) AS n FROM revenue_projection_processed")["n"].item() == 120
    assert tk.query("SELECT count(*) AS n FROM bronze_price_optimization")["n"].item() == 196
    # a view rebuilt after a move reads its columns from the stored schema, not a blueprint
    import shutil

    shutil.move("data", "moved")
    open_warehouse("moved/warehouse.duckdb")
    churn = tk.query("SELECT * FROM customer_churn_processed", warehouse="moved/warehouse.duckdb")
    assert churn.height == 195 and "days_since_last_activity" in churn.columns
    shutil.move("moved", "data")
    open_warehouse("data/warehouse.duckdb")
    status = tk.query(
        "SELECT validation_status, count(*) AS n FROM bronze_customer_churn_status "
        "GROUP BY 1 ORDER BY 1"
    )
    assert status.rows() == [("invalid", 5), ("valid", 195)]


def test_a_new_run_on_the_old_warehouse_adds_to_its_views(old_project):
    from tracer_kit._resources import resource_path

    r = tk.run_pipeline(
        resource_path("tracer_kit/samples/customers_tiny.csv"), "customer_churn", report=False
    )
    assert r.state == "COMPLETED"
    per_dataset = tk.query(
        "SELECT dataset, count(*) AS n FROM customer_churn_latest_by_dataset GROUP BY 1"
    )
    assert per_dataset.rows() == [("customers_tiny", 195)]
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 200
    assert (
        tk.query("SELECT count(DISTINCT run_id) AS n FROM customer_churn_processed")["n"].item()
        == 2
    )


def test_a_run_stopped_at_its_gate_by_an_older_release_keeps_its_verdict(workdir):
    """Records written before the typed record (no gate, no schema_version) get their verdict
    from what the run recorded then, and the bronze status view still sees the gate's run.
    """
    import duckdb

    from tracer_kit._resources import resource_path

    src = resource_path("tracer_kit/samples/customers_tiny.csv")
    with pytest.raises(tk.QualityGateError) as failed:
        tk.run_pipeline(src, "customer_churn", config={"thresholds": {"min_score": 100}})
    run_id = failed.value.result.run_id
    record = run_row(run_id, warehouse="data/warehouse.duckdb")["record"]
    assert record.gate.passed is False and record.gate.failures
    reasons = list(record.gate.failures)
    # the same run as an older release wrote it: no gate, no schema version
    with duckdb.connect("data/warehouse.duckdb") as con:
        params = json.loads(con.execute("SELECT params FROM runs").fetchone()[0])
        del params["gate"], params["schema_version"]
        con.execute("UPDATE runs SET params = ?", [json.dumps(params)])
        con.execute("DELETE FROM schema_version WHERE version >= 9")  # before 9, 10 and 11
    open_warehouse("data/warehouse.duckdb")
    migrated = run_row(run_id, warehouse="data/warehouse.duckdb")["record"]
    assert migrated.schema_version == 1
    assert migrated.gate.passed is False and migrated.gate.failures == reasons
    status = tk.query(
        "SELECT validation_status, count(*) AS n FROM bronze_customer_churn_status "
        "GROUP BY 1 ORDER BY 1"
    )
    assert status.rows() == [("invalid", 5), ("valid", 195)]
