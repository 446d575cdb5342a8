"""End to end in-process: DuckDB tables and counts, Parquet layout, bronze dedupe, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.settings import settings

RUNS_COLUMNS = [
    "run_id",
    "blueprint",
    "state",
    "input_path",
    "input_sha256",
    "read_options",
    "params",
    "versions",
    "pid",
    "host",
    "started_at",
    "finished_at",
    "rows_in",
    "rows_valid",
    "rows_quarantined",
    "rows_out",
    "quality_score",
    "score_parts",
    "error",
    "outputs",
    "dataset",  # schema version 4: the dataset runs are compared by
]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, sample_csv):
    import os

    folder = tmp_path_factory.mktemp("sample_run")
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = tk.run_pipeline(sample_csv, "customer_churn", run_date="2026-01-01")
    finally:
        os.chdir(old)
    return folder, result


def _run_in(folder: Path, source, blueprint) -> tk.RunResult:
    """A run with its warehouse, reports and processed files all under ``folder``."""
    return tk.run_pipeline(
        source,
        blueprint,
        warehouse=folder / "w.duckdb",
        output_dir=folder / "reports",
        processed_dir=folder / "processed",
        run_date="2026-01-01",
        report=False,
    )


def q(folder: Path, sql: str) -> pl.DataFrame:
    return tk.query(sql, warehouse=folder / "data" / "warehouse.duckdb")


def test_sample_run_counts(sample_run):
    folder, r = sample_run
    assert r.state == "COMPLETED"
    # the generator breaks 5 x 50 rows on purpose: 50 duplicate ids, 50 negative values,
    # 50 unparsable dates, 50 activity-before-created, 50 unparsable ticket counts
    assert (r.rows_in, r.rows_valid, r.rows_quarantined, r.rows_out) == (10_000, 9_750, 250, 9_750)
    assert r.quality_score == pytest.approx(99.1)
    assert r.features_created == list(tk.get_blueprint("customer_churn").feature_names)
    assert set(r.stage_seconds) == {
        "ingest",
        "validate",
        "features",
        "preprocess",
        "model",
        "store",
        "report",
    }


def test_duckdb_rows_equal_rows_written(sample_run):
    folder, r = sample_run
    n = q(
        folder, f"SELECT count(*) AS n FROM customer_churn_processed WHERE run_id = '{r.run_id}'"
    )["n"].item()
    assert n == r.rows_out == r.frame.height
    assert q(folder, "SELECT count(*) AS n FROM customer_churn_latest")["n"].item() == 9_750
    assert q(folder, "SELECT count(*) AS n FROM quarantine_customer_churn")["n"].item() == 250
    assert q(folder, "SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 10_000


def test_runs_table_has_every_documented_column(sample_run):
    folder, r = sample_run
    runs = q(folder, "SELECT * FROM runs")
    assert runs.columns == RUNS_COLUMNS
    row = runs.row(0, named=True)
    assert row["state"] == "COMPLETED"
    assert row["input_sha256"] == r.input_sha256 and len(row["input_sha256"]) == 64
    assert json.loads(row["params"])["reference_date"] == "2025-06-30"
    assert json.loads(row["params"])["run_date"] == "2026-01-01"
    assert json.loads(row["score_parts"]) == r.score_parts
    assert json.loads(row["read_options"])["delimiter"] == ","
    assert json.loads(row["versions"])["polars"].startswith("2.")
    assert row["dataset"] == "customers"
    stages = q(folder, "SELECT stage FROM stage_timings ORDER BY stage")["stage"].to_list()
    assert stages == ["features", "ingest", "model", "preprocess", "report", "store", "validate"]


def test_parquet_sorted_without_run_id_or_clock(sample_run):
    folder, r = sample_run
    parquet = folder / r.outputs["parquet"]
    assert parquet == folder / "data" / "processed" / "customer_churn" / f"{r.run_id}.parquet"
    df = pl.read_parquet(parquet)
    assert "run_id" not in df.columns
    assert not any(t in (pl.Datetime,) for t in df.schema.values())
    assert df.equals(df.sort("customer_id", "source_row"))
    assert df.height == 9_750
    assert not (folder / "data" / "staging" / r.run_id).exists()
    import hashlib

    assert r.outputs["parquet_sha256"] == hashlib.sha256(parquet.read_bytes()).hexdigest()
    stored = json.loads(q(folder, "SELECT outputs FROM runs")["outputs"].item())
    assert (
        stored["parquet_sha256"] == r.outputs["parquet_sha256"]
        and len(stored["model_sha256"]) == 64
    )


def test_report_has_score_and_features(sample_run):
    folder, r = sample_run
    html = (folder / r.outputs["report"]).read_text()
    assert 'id="quality-score">99.1<' in html
    assert "engagement_score" in html and "exp(-days_since_last_activity / 30)" in html
    assert "http://" not in html and "https://" not in html  # opens offline
    log = [json.loads(line) for line in (folder / r.outputs["log"]).read_text().splitlines()]
    assert all(entry["run_id"] == r.run_id for entry in log)


def test_rerun_same_input_is_byte_identical_and_bronze_not_duplicated(churn_file, workdir):
    path = churn_file(["C1,2025-06-30,2024-01-01,10,1,1,basic", "C2,2025-06-01,2024-01-01,20,,,x"])
    a = tk.run_pipeline(path, "customer_churn", report=False, run_date="2026-01-01")
    b = tk.run_pipeline(path, "customer_churn", report=False, run_date="2026-01-01")
    assert Path(a.outputs["parquet"]).read_bytes() == Path(b.outputs["parquet"]).read_bytes()
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 2
    first = tk.query("SELECT DISTINCT first_run_id FROM bronze_customer_churn")[
        "first_run_id"
    ].to_list()
    assert first == [a.run_id]
    assert tk.query("SELECT count(*) AS n FROM customer_churn_processed")["n"].item() == 4
    latest = tk.query("SELECT DISTINCT run_id FROM customer_churn_latest")["run_id"].to_list()
    assert latest == [b.run_id]


def test_failed_ingest_marks_run_failed(workdir):
    bad = workdir / "empty.csv"
    bad.write_bytes(b"")
    with pytest.raises(tk.IngestError, match="empty"):
        tk.run_pipeline(bad, "customer_churn", report=False)
    runs = tk.query("SELECT state, error FROM runs")
    assert runs["state"].to_list() == ["FAILED"]
    assert "is empty (0 bytes)" in runs["error"].item()
    assert not list((workdir / "data").glob("processed/**/*.parquet"))


def test_extras_kept_as_json(churn_file):
    header = "customer_id,last_activity_date,account_created_date,total_value,region"
    path = churn_file(["C1,2025-06-30,2024-01-01,10,north"], header=header)
    r = tk.run_pipeline(path, "customer_churn", report=False)
    assert json.loads(r.frame["extras"].item()) == {"region": "north"}
    assert (
        tk.query("SELECT extras->>'region' AS region FROM customer_churn_processed")[
            "region"
        ].item()
        == "north"
    )


@pytest.mark.parametrize(
    ("sample", "blueprint", "key"),
    [
        ("customers.csv", "customer_churn", "customer_id"),
        ("prices.csv", "price_optimization", "product_id"),
        ("revenue.csv", "revenue_projection", "date"),
    ],
)
def test_out_of_core_paths_give_the_same_run(tmp_path, monkeypatch, sample, blueprint, key):
    """Sampled fitting, profiling and schema checks (and key ranges, where a plan needs them) change nothing but memory."""

    from .conftest import REPO

    def run(folder):
        return _run_in(folder, REPO / "data" / "samples" / sample, blueprint)

    whole = run(tmp_path / "whole")
    monkeypatch.setattr(settings, "sort_chunk_rows", 150)  # dozens of key ranges
    monkeypatch.setattr(settings, "schema_check_rows", 500)
    monkeypatch.setattr(settings, "prefilter_rows", 0)  # quarantine by streaming join
    monkeypatch.setattr(settings, "repeats_in_memory_rows", 0)  # repeats grouped by DuckDB
    chunked = run(tmp_path / "chunked")
    quarantined = [
        tk.query(
            "SELECT stage, source_row, source_line, raw, reasons FROM "
            f"quarantine_{blueprint} ORDER BY source_row",
            warehouse=folder / "w.duckdb",
        )
        for folder in (tmp_path / "whole", tmp_path / "chunked")
    ]
    assert quarantined[0].height == whole.rows_quarantined > 0
    assert quarantined[0].equals(quarantined[1])
    assert chunked.frame.equals(whole.frame)
    assert chunked.frame.get_column(key).is_sorted()
    assert (chunked.rows_in, chunked.rows_valid, chunked.quality_score) == (
        whole.rows_in,
        whole.rows_valid,
        whole.quality_score,
    )
    assert chunked.issues == whole.issues
    a = pl.read_parquet(whole.outputs["model"])
    b = pl.read_parquet(chunked.outputs["model"])
    assert a.equals(b)
    # sampled fit (every k-th row) still fits and transforms every row
    monkeypatch.setattr(settings, "fit_rows", 1000)
    monkeypatch.setattr(settings, "exact_distinct_rows", 1000)  # sampled profiles
    sampled = run(tmp_path / "sampled")
    assert pl.read_parquet(sampled.outputs["model"]).height == sampled.rows_out


def test_sink_sorted_matches_a_full_sort(tmp_path):
    import tracer_kit._scratch as scratch
    from tracer_kit.settings import override

    with override(sort_chunk_rows=37):
        _sink_sorted_matches_a_full_sort(scratch, tmp_path)


def _sink_sorted_matches_a_full_sort(scratch, tmp_path):
    keys = [f"k{i % 53:03d}" if i % 11 else None for i in range(1000)]
    frame = pl.DataFrame({"k": keys, "source_row": list(range(1000, 0, -1)), "v": range(1000)})
    scratch.sink_sorted(frame.lazy(), tmp_path / "s.parquet", ["k", "source_row"])
    expected = frame.sort(["k", "source_row"], nulls_last=True)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(expected)
    # rows already in order stream straight through
    scratch.sink_sorted(expected.lazy(), tmp_path / "t.parquet", ["k", "source_row"])
    assert pl.read_parquet(tmp_path / "t.parquet").equals(expected)


def test_processed_rows_keep_source_order_or_get_key_order(sample_run, tmp_path, sample_csv):
    """Churn rows stream in source order; a plan that yields neither order is sorted by key."""
    import dataclasses

    folder, result = sample_run
    rows = pl.read_parquet(folder / result.outputs["parquet"]).get_column("source_row")
    assert rows.is_sorted() and rows.n_unique() == len(rows)

    churn = tk.get_blueprint("customer_churn")

    def shuffled(valid, ctx):  # a custom plan that reorders its rows: by hash
        return churn.build_features(valid, ctx).sort(pl.col("customer_id").hash(seed=1))

    custom = dataclasses.replace(churn, name="shuffled_churn", build_features=shuffled)
    r = _run_in(tmp_path, sample_csv, custom)
    frame = pl.read_parquet(r.outputs["parquet"])
    assert frame.height == result.rows_out
    assert frame.equals(frame.sort("customer_id", "source_row", nulls_last=True))
