"""A new kind of thing touches one place: a toy input format registered from this file alone."""

from __future__ import annotations

from pathlib import Path

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


# --------------------------------------------------------------------------- a toy column check

from tracer_kit.quality import CHECKS, Check, Issue, register_check  # noqa: E402
from tracer_kit.quality.checks import IssueContext, RowContext  # noqa: E402


class _TestAccounts(Check):
    """Customers whose id starts with ``TEST`` are quarantined; a low issue counts them."""

    name = "test_accounts"
    threshold = ("test_account_share", 0.25)

    def reasons(self, rows: RowContext) -> list[pl.Expr]:
        is_test = pl.col("customer_id").str.starts_with("TEST").fill_null(False)
        return [pl.when(is_test).then(pl.lit("test_account"))]

    def aggregates(self, rows: RowContext) -> dict[str, pl.Expr]:
        return {"n": pl.col("customer_id").str.starts_with("TEST").sum()}

    def issues(self, found, ctx: IssueContext) -> list[Issue]:
        n = int(found["n"])
        limit = ctx.thresholds.value("test_account_share")
        severity = "high" if n / ctx.rows > limit else "low"
        return [Issue(severity, "customer_id", self.name, n / ctx.rows, limit, n)] if n else []


@pytest.fixture
def test_accounts_check():
    before = list(CHECKS)
    register_check(_TestAccounts)
    yield
    CHECKS[:] = before


def test_a_toy_check_quarantines_and_raises_its_issue(workdir, test_accounts_check):
    header = "customer_id,last_activity_date,account_created_date,total_value"
    rows = [
        "C1,2024-05-01,2023-01-01,10",
        "TEST9,2024-05-02,2023-01-01,11",
        "C2,2024-05-03,2023-01-01,-1",
    ]
    (workdir / "crm.csv").write_text("\n".join([header, *rows]) + "\n")
    q = tk.validate("crm.csv", "customer_churn")
    assert q.quarantine.select("source_row", "reasons").rows() == [
        (2, ["test_account"]),
        (3, ["out_of_range"]),
    ]
    toy = [i for i in q.issues if i.check == "test_accounts"]
    assert [(i.severity, i.rows_affected, i.threshold) for i in toy] == [("high", 1, 0.25)]
    assert q.score_parts["validity"] == pytest.approx(1 / 3, abs=1e-6)
    # its threshold is set like a built-in one; a misspelt one is refused
    q = tk.validate("crm.csv", "customer_churn", config={"thresholds": {"test_account_share": 0.5}})
    assert [i.severity for i in q.issues if i.check == "test_accounts"] == ["low"]
    with pytest.raises(tk.ConfigError, match="did you mean 'test_account_share'"):
        tk.validate("crm.csv", "customer_churn", config={"thresholds": {"test_acount_share": 0.5}})


# --------------------------------------------------------------------------- a toy transform

from tracer_kit.quality import TRANSFORMS, Transform, register_transform  # noqa: E402


@pytest.fixture
def no_dots_transform():
    register_transform(
        Transform("no_dots", "dots removed", lambda t, _: t.str.replace_all(".", "", literal=True))
    )
    yield
    TRANSFORMS.pop("no_dots")


def test_a_toy_transform_cleans_a_field_and_is_counted(workdir, no_dots_transform):
    header = "customer_id,last_activity_date,account_created_date,total_value"
    rows = ["C.1,2024-05-01,2023-01-01,10", "C2,2024-05-02,2023-01-01,11"]
    (workdir / "crm.csv").write_text("\n".join([header, *rows]) + "\n")
    r = tk.run_pipeline(
        "crm.csv",
        "customer_churn",
        config={"transforms": {"customer_id": ["no_dots"]}},
        report=False,
    )
    assert sorted(r.frame["customer_id"].to_list()) == ["C1", "C2"]
    assert r.params["transforms"] == [
        {"field": "customer_id", "transform": "no_dots", "changed": 1}
    ]


# --------------------------------------------------------------------------- a toy output file

from tracer_kit.outputs import OUTPUTS, Output, register_output  # noqa: E402


def _write_counts(ctx, paths):
    rows = ctx.processed.select(pl.len()).collect().item()
    paths["row_counts"].write_text(f'{{"rows": {rows}}}\n')


@pytest.fixture
def counts_output():
    register_output(
        Output("row_counts", "the processed row count", {"row_counts": ".rows.json"}, _write_counts)
    )
    yield
    OUTPUTS.pop("row_counts")


def test_a_toy_output_is_written_committed_and_deleted_with_its_run(workdir, counts_output):
    header = "customer_id,last_activity_date,account_created_date,total_value"
    rows = ["C1,2024-05-01,2023-01-01,10", "C2,2024-05-02,2023-01-01,11"]
    (workdir / "crm.csv").write_text("\n".join([header, *rows]) + "\n")
    r = tk.run_pipeline("crm.csv", "customer_churn", report=False)
    written = workdir / "data" / "processed" / "customer_churn" / f"{r.run_id}.rows.json"
    assert Path(r.outputs["row_counts"]).resolve() == written
    assert written.read_text() == '{"rows": 2}\n'
    stored = tk.query("SELECT outputs.row_counts::VARCHAR AS p FROM runs").item()
    assert stored.strip('"') == r.outputs["row_counts"]
    tk.delete_runs([r.run_id])
    assert not written.exists()
