"""The same customers in every format give the same processed rows, and `tracer profile` works on each."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import polars as pl
import pytest

import tracer_kit as tk

from .test_ingest import write_xlsx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def customers():
    from tracer_kit.datasets import customers

    return customers(60, seed=3)


def write_all(folder, df: pl.DataFrame) -> dict[str, object]:
    rows = df.rows()
    paths = {}
    paths["csv"] = folder / "c.csv"
    df.write_csv(paths["csv"])
    paths["tsv"] = folder / "c.tsv"
    df.write_csv(paths["tsv"], separator="\t")
    paths["json"] = folder / "c.json"
    paths["json"].write_text(json.dumps(df.to_dicts()))
    paths["ndjson"] = folder / "c.ndjson"
    df.write_ndjson(paths["ndjson"])
    paths["parquet"] = folder / "c.parquet"
    df.write_parquet(paths["parquet"])
    paths["excel"] = write_xlsx(folder / "c.xlsx", [df.columns, *[list(r) for r in rows]])
    paths["xml"] = folder / "c.xml"
    items = "".join(
        "<customer>"
        + "".join(
            f"<{k}>{v}</{k}>" if v is not None else f"<{k}/>"
            for k, v in zip(df.columns, r, strict=True)
        )
        + "</customer>"
        for r in rows
    )
    paths["xml"].write_text(f"<?xml version='1.0'?><customers>{items}</customers>")
    paths["gzip"] = folder / "c.csv.gz"
    paths["gzip"].write_bytes(gzip.compress(paths["csv"].read_bytes()))
    return paths


def test_every_format_gives_the_same_processed_rows(workdir, customers):
    paths = write_all(workdir, customers)
    frames = {}
    for fmt, path in paths.items():
        r = tk.run_pipeline(path, "customer_churn", report=False, run_date="2026-01-01")
        assert r.state == "COMPLETED", fmt
        frames[fmt] = r.frame.drop("extras")
    reference = frames.pop("csv")
    assert reference.height > 50
    for fmt, frame in frames.items():
        assert frame.equals(reference), fmt
    # bronze keeps one copy per distinct file (8 files x 60 records)
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 8 * 60


def test_profile_cli_on_every_format(workdir, customers):
    paths = write_all(workdir, customers)
    for fmt, path in paths.items():
        done = subprocess.run(
            [sys.executable, "-m", "tracer_kit.cli", "profile", str(path)],
            capture_output=True,
            text=True,
            env={"COLUMNS": "200", "PATH": ""},
        )
        assert done.returncode == 0, (fmt, done.stderr)
        assert "total_value" in done.stdout and "Float64" in done.stdout, fmt
        assert "60 (0 rejected)" in done.stdout, fmt
