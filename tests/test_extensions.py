"""A new kind of thing touches one place: a toy input format registered from this file alone."""

from __future__ import annotations

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.ingest import READERS, Reader, ReadOutcome, ReadRequest, register_reader


def _read_kv(req: ReadRequest) -> ReadOutcome:
    """``key=value|key=value`` records, one per line (a toy format)."""
    records = []
    for line in req.work.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(dict(pair.split("=", 1) for pair in line.split("|")))
    frame = pl.DataFrame(records, schema={k: pl.String for k in records[0]})
    frame = frame.with_row_index("source_row", offset=1).with_columns(
        pl.col("source_row").cast(pl.Int64),
        pl.col("source_row").cast(pl.Int64).alias("source_line"),
    )
    return ReadOutcome(frame=frame.lazy(), columns=list(records[0]), rows=frame.height)


@pytest.fixture
def kv_format():
    register_reader(Reader("kv", True, _read_kv, (".kv",)))
    yield
    READERS.pop("kv")


def test_a_toy_format_reads_and_runs(workdir, kv_format):
    lines = [
        "customer_id=C1|last_activity_date=2024-05-01|account_created_date=2023-01-01|total_value=10",
        "customer_id=C2|last_activity_date=2024-05-02|account_created_date=2023-01-01|total_value=-5",
    ]
    (workdir / "crm.kv").write_text("\n".join(lines) + "\n")
    ing = tk.read_table("crm.kv", format="kv")
    assert ing.info.format == "kv" and ing.info.encoding == "utf-8"
    assert ing.frame.collect()["total_value"].to_list() == ["10", "-5"]
    r = tk.run_pipeline("crm.kv", "customer_churn", config={"format": "kv"}, report=False)
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (2, 1, 1)
    reasons = tk.query("SELECT reasons FROM quarantine_customer_churn")["reasons"].to_list()
    assert reasons == [["out_of_range"]]


def test_unknown_format_lists_the_registered_ones(workdir, kv_format):
    (workdir / "x.csv").write_text("a\n1\n")
    with pytest.raises(tk.IngestError, match="csv, json, ndjson, parquet, excel, xml, kv"):
        tk.read_table("x.csv", format="yaml")
