"""A warehouse written by release 0.1.0 (commit 7b4be3c) opens, migrates, and its views answer.

The fixture is that release's own output over the three tiny samples (run date
2026-01-01), archived with its bronze and processed Parquet.
"""

from __future__ import annotations

import tarfile

import pytest

import tracer_kit as tk
from tracer_kit.warehouse import open_warehouse

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
    # 7: bronze_files.pages (an API source's pages, the records' positions); 8: file_hashes
    assert tk.query("SELECT max(version) AS v FROM schema_version")["v"].item() == 8
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
