"""The warehouse never loses data: kill -9 at every stage, Ctrl-C, concurrent runs, a busy lock, reruns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import tracer_kit as tk
from tracer_kit.warehouse import open_warehouse

from .conftest import CHURN_HEADER, write_csv

pytestmark = pytest.mark.slow

ROWS = [
    f"C{i},2025-06-{1 + i % 28:02d},2024-01-01,{i}.5,{i % 4},{i * 3},basic" for i in range(1, 201)
]


def start_run(workdir: Path, csv: Path, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "TRACER_LOCK_TIMEOUT": "60", **env}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracer_kit.cli",
            "run",
            str(csv),
            "-b",
            "customer_churn",
            "--no-notebook",
        ],
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the pause: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("the run never reached its pause point")
        time.sleep(0.05)


def table_count(warehouse: Path, table: str) -> int:
    exists = tk.query(
        f"SELECT count(*) AS n FROM information_schema.tables WHERE table_name = '{table}'",
        warehouse=warehouse,
    )["n"].item()
    return (
        tk.query(f'SELECT count(*) AS n FROM "{table}"', warehouse=warehouse)["n"].item()
        if exists
        else 0
    )


@pytest.mark.parametrize(
    "stage", ["ingest", "validate", "features", "preprocess", "store", "commit"]
)
def test_kill_9_at_any_stage_leaves_nothing_of_the_run(workdir, stage):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS)
    marker = workdir / "paused"
    proc = start_run(workdir, csv, TRACER_TEST_PAUSE_AT=stage, TRACER_TEST_PAUSE_FILE=str(marker))
    wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    warehouse = workdir / "data" / "warehouse.duckdb"
    open_warehouse(warehouse)  # the next open notices the dead process
    runs = tk.query("SELECT state, error FROM runs", warehouse=warehouse)
    assert runs["state"].to_list() == ["FAILED"]
    assert "stopped" in runs["error"].item()
    assert table_count(warehouse, "customer_churn_processed") == 0
    assert table_count(warehouse, "bronze_customer_churn") == 0
    assert list((workdir / "data").rglob("*.parquet")) == []
    assert list((workdir / "data").rglob("*.skops")) == []
    assert (
        not any((workdir / "data" / "staging").glob("*"))
        if (workdir / "data" / "staging").exists()
        else True
    )
    # the warehouse still works: a new run completes
    done = start_run(workdir, csv)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert table_count(warehouse, "customer_churn_processed") == 200


def test_ctrl_c_marks_the_run_cancelled(workdir):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS)
    marker = workdir / "paused"
    proc = start_run(
        workdir, csv, TRACER_TEST_PAUSE_AT="features", TRACER_TEST_PAUSE_FILE=str(marker)
    )
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "error: cancelled"
    warehouse = workdir / "data" / "warehouse.duckdb"
    assert tk.query("SELECT state FROM runs", warehouse=warehouse)["state"].to_list() == [
        "CANCELLED"
    ]
    assert list((workdir / "data").rglob("*.parquet")) == []


@pytest.mark.parametrize("n", [2, 4])
def test_concurrent_runs_take_turns_and_keep_every_row(workdir, n):
    files = [write_csv(workdir / f"c{i}.csv", CHURN_HEADER, ROWS[: 50 * (i + 1)]) for i in range(n)]
    procs = [start_run(workdir, f) for f in files]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    warehouse = workdir / "data" / "warehouse.duckdb"
    runs = tk.query(
        "SELECT run_id, state, rows_out FROM runs ORDER BY rows_out", warehouse=warehouse
    )
    assert runs["state"].to_list() == ["COMPLETED"] * n
    assert runs["rows_out"].to_list() == [50 * (i + 1) for i in range(n)]
    per_run = tk.query(
        "SELECT run_id, count(*) AS n FROM customer_churn_processed GROUP BY run_id",
        warehouse=warehouse,
    )
    assert dict(per_run.rows()) == dict(zip(runs["run_id"], runs["rows_out"], strict=True))


def test_busy_warehouse_gives_a_clear_message(workdir):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS[:5])
    warehouse = workdir / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(warehouse))  # this test process holds the write lock
    try:
        proc = start_run(workdir, csv, TRACER_LOCK_TIMEOUT="1")
        _, err = proc.communicate(timeout=60)
    finally:
        con.close()
    assert proc.returncode == 1
    assert f"warehouse {Path('data/warehouse.duckdb')} is busy: process {os.getpid()}" in err
    assert len(err.strip().splitlines()) == 1


def test_rerun_reproduces_byte_identical_parquet(workdir):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS)
    first = tk.run_pipeline(csv, "customer_churn", report=False)
    done = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "rerun", first.run_id],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    runs = tk.query("SELECT run_id, outputs, params FROM runs ORDER BY started_at")
    assert runs.height == 2
    a, b = (json.loads(o)["parquet"] for o in runs["outputs"])
    assert Path(a).read_bytes() == Path(b).read_bytes()
    pa, pb = (json.loads(p) for p in runs["params"])
    assert (pa["run_date"], pa["reference_date"]) == (pb["run_date"], pb["reference_date"])


def test_runs_listing_answers_what_ran(workdir):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS[:10])
    r = tk.run_pipeline(csv, "customer_churn", report=False)
    done = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "runs"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert done.returncode == 0
    assert r.run_id in done.stdout and "COMPLETED" in done.stdout and "c.csv" in done.stdout
    show = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "runs", "show", r.run_id],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert (
        show.returncode == 0 and "stage_seconds" in show.stdout and "customer_churn" in show.stdout
    )


def test_query_cli_formats(workdir):
    csv = write_csv(workdir / "c.csv", CHURN_HEADER, ROWS[:10])
    tk.run_pipeline(csv, "customer_churn", report=False)
    cli = [sys.executable, "-m", "tracer_kit.cli", "query"]
    as_json = subprocess.run(
        [*cli, "SELECT count(*) AS n FROM customer_churn_processed", "--output-format", "json"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert json.loads(as_json.stdout) == [{"n": 10}]
    out = workdir / "out.parquet"
    subprocess.run(
        [
            *cli,
            "SELECT * FROM customer_churn_latest",
            "--output-format",
            "parquet",
            "--out",
            str(out),
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    import polars as pl

    assert pl.read_parquet(out).height == 10
    bad = subprocess.run([*cli, "SELEC nonsense"], cwd=workdir, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: query failed: Parser Error")


def test_batch_runs_every_file_and_reports_failures(workdir):
    (workdir / "in").mkdir()
    write_csv(workdir / "in" / "a.csv", CHURN_HEADER, ROWS[:20])
    write_csv(workdir / "in" / "b.csv", CHURN_HEADER, ROWS[20:50])
    (workdir / "in" / "c.csv").write_text("wrong,columns\n1,2\n")
    results = tk.run_batch(
        sorted((workdir / "in").glob("*.csv")), "customer_churn", max_concurrent=2, progress=False
    )
    assert [r.state for r in results] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert [r.rows_out for r in results[:2]] == [20, 30]
    assert "needs fields missing from the file: 'customer_id'" in results[2].error
    for r in results[:2]:
        assert (workdir / "reports" / r.run_id / "notebook.html").exists()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracer_kit.cli",
            "batch",
            "in/*.csv",
            "-b",
            "customer_churn",
            "--max-concurrent",
            "3",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=600,
    )
    assert done.returncode == 1
    assert "1 of 3 file(s) failed" in done.stderr
    assert "COMPLETED" in done.stdout and "FAILED" in done.stdout


def test_tables_from_before_the_parquet_views_are_kept(workdir):
    """A warehouse whose bronze and processed rows were DuckDB tables keeps them, read by the views."""
    warehouse = workdir / "data" / "warehouse.duckdb"
    open_warehouse(warehouse)
    con = duckdb.connect(str(warehouse))
    con.execute("DELETE FROM schema_version WHERE version >= 2")
    con.execute("DROP TABLE bronze_files")
    con.execute("DROP TABLE processed_files")
    con.execute(
        """CREATE TABLE bronze_customer_churn (file_sha256 VARCHAR NOT NULL,
        read_options_hash VARCHAR NOT NULL, source_row BIGINT NOT NULL, source_line BIGINT,
        raw JSON, source_file VARCHAR, first_run_id VARCHAR, ingested_at TIMESTAMP)"""
    )
    con.execute(
        """INSERT INTO bronze_customer_churn VALUES ('old', 'opts', 1, 2,
        '{"customer_id": "OLD1"}', 'old.csv', 'old-run', TIMESTAMP '2026-01-01 00:00:00')"""
    )
    con.close()
    csv = write_csv(workdir / "data" / "c.csv", CHURN_HEADER, ROWS)
    result = tk.run_pipeline(csv, "customer_churn", warehouse=warehouse, run_date="2026-01-01")
    q = lambda sql: tk.query(sql, warehouse=warehouse)  # noqa: E731
    assert q("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 201
    old = q("SELECT raw FROM bronze_customer_churn WHERE file_sha256 = 'old'")["raw"].item()
    assert json.loads(old) == {"customer_id": "OLD1"}
    assert q("SELECT count(*) AS n FROM bronze_customer_churn_legacy")["n"].item() == 1
    new = q(
        "SELECT raw FROM bronze_customer_churn WHERE first_run_id = "
        f"'{result.run_id}' AND source_row = 1"
    )["raw"].item()
    assert json.loads(new)["customer_id"] == "C1"
    n = q(f"SELECT count(*) AS n FROM customer_churn_latest WHERE run_id = '{result.run_id}'")
    assert n["n"].item() == result.rows_out == 200
    # a file already in the legacy table is not stored again
    con = duckdb.connect(str(warehouse))
    con.execute(
        "INSERT INTO bronze_customer_churn_legacy VALUES (?, ?, 1, 2, '{}', 'd.csv', 'old', now())",
        [result.input_sha256, "again"],
    )
    con.close()
    again = write_csv(workdir / "data" / "d.csv", CHURN_HEADER, ROWS[:5])
    sha = tk.read_table(again).info
    con = duckdb.connect(str(warehouse))
    con.execute(
        "UPDATE bronze_customer_churn_legacy SET file_sha256 = ?, read_options_hash = ? "
        "WHERE read_options_hash = 'again'",
        [sha.sha256, sha.read_options_hash()],
    )
    con.close()
    tk.run_pipeline(again, "customer_churn", warehouse=warehouse, run_date="2026-01-01")
    assert q("SELECT count(*) AS n FROM bronze_files")["n"].item() == 1
    assert q("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 202


def test_a_moved_project_keeps_its_bronze_and_processed_rows(tmp_path):
    """Registered Parquet paths are relative to the warehouse, so a moved project still reads them."""
    import shutil

    first = tmp_path / "first"
    (first / "data").mkdir(parents=True)
    csv = write_csv(first / "data" / "c.csv", CHURN_HEADER, ROWS)
    result = tk.run_pipeline(
        csv,
        "customer_churn",
        warehouse=first / "data" / "warehouse.duckdb",
        output_dir=first / "reports",
        processed_dir=first / "data" / "processed",
        run_date="2026-01-01",
        report=False,
    )
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    warehouse = moved / "data" / "warehouse.duckdb"
    open_warehouse(warehouse)
    q = lambda sql: tk.query(sql, warehouse=warehouse)["n"].item()  # noqa: E731
    assert q("SELECT count(*) AS n FROM bronze_customer_churn") == 200
    assert q("SELECT count(*) AS n FROM customer_churn_latest") == result.rows_out == 200
    assert (
        q(
            "SELECT count(*) AS n FROM bronze_customer_churn_status WHERE validation_status = 'valid'"
        )
        == 200
    )


def test_a_warehouse_file_another_process_is_creating_is_waited_for(tmp_path):
    """A process that opens the warehouse while another is still writing the new file's
    headers (an empty file) waits for them instead of calling the warehouse damaged; a file
    that stays short is damaged, in one line.
    """
    import threading

    import duckdb

    from tracer_kit.warehouse.connection import connect

    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"")

    def create() -> None:
        time.sleep(0.4)
        path.unlink()
        duckdb.connect(str(path)).close()

    creator = threading.Thread(target=create)
    creator.start()
    with connect(path) as con:
        assert con.execute("SELECT 42").fetchone() == (42,)
    creator.join()
    stuck = tmp_path / "stuck.duckdb"
    stuck.write_bytes(b"\0" * 100)
    with pytest.raises(tk.TracerError, match="is damaged"), connect(stuck, timeout=0.5):
        pass
