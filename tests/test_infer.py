"""A contract drafted from the data: ``tracer infer`` then ``tracer run`` on files of different shapes."""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

import tracer_kit as tk
from tracer_kit.cli import app

from .conftest import REPO
from .superstore import HEADER, superstore_rows, write_superstore


def _fields(text: str) -> dict:
    return yaml.safe_load(text)["fields"]


def test_the_superstore_eu_export_is_drafted_as_an_analyst_would(workdir):
    write_superstore(workdir / "superstore_eu.csv", 600)
    text = tk.infer("superstore_eu.csv", name="superstore")
    assert text == tk.infer("superstore_eu.csv", name="superstore")  # deterministic
    fields = _fields(text)
    assert list(fields) == [h.lower().replace(" ", "_").replace("-", "_") for h in HEADER]
    assert fields["row_id"] == {"kind": "id", "required": True, "unique": True}
    assert yaml.safe_load(text)["identifier"] == "row_id"
    for date in ("order_date", "ship_date"):
        assert fields[date] == {"kind": "date", "required": True, "format": "day_first"}
    assert fields["quantity"]["kind"] == "int" and fields["quantity"]["ge"] == 1
    assert fields["segment"]["allowed"] == ["Consumer", "Corporate", "Home Office"]
    assert fields["sales"]["kind"] == "float" and fields["discount"] == {
        "kind": "float", "required": True, "ge": 0, "le": 1,
    }  # fmt: skip
    assert fields["order_id"]["pattern"] == r"^[A-Z]{2}-\d{4}-\d{6}$"
    assert fields["customer_name"]["pii"] is True
    # each choice says why, from the whole file
    assert (
        "row_id:        {kind: id, required: true, unique: true}  # 0 missing in 600 rows; 600 distinct values"
        in text
    )
    assert "# 0 missing in 600 rows; 3 values" in text


def test_the_draft_passes_on_its_source_and_flags_what_a_later_export_changed(workdir):
    write_superstore(workdir / "superstore_eu.csv", 600)
    runner = CliRunner()
    made = runner.invoke(app, ["infer", "superstore_eu.csv", "--out", "blueprints/superstore.yaml"])
    assert made.exit_code == 0, made.output
    assert "tracer run superstore_eu.csv -b superstore" in made.output
    first = tk.run_pipeline("superstore_eu.csv", "superstore", report=False)
    assert (first.state, first.rows_quarantined) == ("COMPLETED", 0)
    rows = superstore_rows(50, seed=11, start=dt.date(2017, 3, 1))
    rows[3][7] = "Enterprise"  # a new segment
    rows[5][18] = "0"  # a quantity of 0
    rows[8][2] = "31/02/2017"  # no such day
    later = workdir / "superstore_later.csv"
    later.write_text("\n".join(";".join(r) for r in [HEADER, *rows]) + "\n")
    second = tk.run_pipeline(later, "superstore", report=False)
    failing = tk.failing_rows(second.run_id)
    assert dict(
        zip(failing.get_column("source_row"), failing.get_column("failed"), strict=True)
    ) == {
        4: "not_allowed on segment",
        6: "out_of_range on quantity",
        9: "invalid_date on order_date",
    }
    again = runner.invoke(
        app, ["infer", "superstore_eu.csv", "--out", "blueprints/superstore.yaml"]
    )
    assert again.exit_code == 1 and "exists; add --force" in again.output


@pytest.mark.parametrize("sample", ["customers.csv", "prices.parquet", "revenue.xlsx"])
def test_infer_then_run_passes_on_files_of_other_shapes(workdir, sample):
    source = REPO / "data" / "samples" / f"{sample.split('.')[0]}.csv"
    target = workdir / sample
    frame = pl.read_csv(source, infer_schema=False)
    if sample.endswith(".parquet"):
        frame.write_parquet(target)
    elif sample.endswith(".xlsx"):
        tk.write_table(frame, target)
    else:
        shutil.copy(source, target)
    (workdir / "blueprints").mkdir()
    (workdir / "blueprints" / "drafted.yaml").write_text(tk.infer(target, name="drafted"))
    result = tk.run_pipeline(target, "drafted", report=False)
    assert result.state == "COMPLETED" and result.quality_score >= 99
    # the dirty samples' few bad values are quarantined, not hidden by a looser kind
    assert result.rows_quarantined <= 0.011 * result.rows_in


def test_infer_declares_what_the_run_reads(workdir):
    lines = [
        "Code;Price (€);Active;Seen at;Email;Tier",
        *[
            f"AB-{i:04d};{i},5;{'yes' if i % 2 else 'no'};2024-01-0{1 + i % 9} 10:0{i % 10}:00;"
            f"user{i}@example.com;{['Gold', 'gold', 'Silver'][i % 3]}"
            for i in range(1, 41)
        ],
    ]
    (workdir / "shop.csv").write_text("\n".join(lines) + "\n")
    fields = _fields(tk.infer("shop.csv"))
    assert fields["code"]["kind"] == "id" and fields["code"]["pattern"] == r"^[A-Z]{2}-\d{4}$"
    assert fields["price"] == {
        "kind": "float",
        "required": True,
        "ge": 0,
        "le": 100,
        "column": "Price (€)",
    }
    assert fields["active"]["kind"] == "bool"
    assert fields["seen_at"]["kind"] == "datetime"
    assert fields["email"] == {"kind": "email", "required": True, "pii": True}
    assert fields["tier"] == {
        "kind": "category", "required": True, "ignore_case": True, "allowed": ["Silver", "gold"],
    }  # fmt: skip
    (workdir / "blueprints").mkdir()
    (workdir / "blueprints" / "shop.yaml").write_text(tk.infer("shop.csv"))
    result = tk.run_pipeline("shop.csv", "shop", report=False)
    assert (result.state, result.rows_valid) == ("COMPLETED", 40)


def test_infer_on_sources_it_cannot_draft_says_so_in_one_line(workdir):
    runner = CliRunner()
    (workdir / "empty.csv").write_text("")
    (workdir / "header.csv").write_text("a,b\n")
    (workdir / "one.csv").write_text("a,b\n1,x\n")
    (workdir / "wide.csv").write_text(
        ",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" * 10_000) + "\n"
    )
    for name, said in [
        ("empty.csv", "empty.csv"),
        ("header.csv", "header.csv: has a header but no data rows"),
        ("wide.csv", "10,000 columns; infer drafts contracts of at most 1,000"),
        ("missing.csv", "missing.csv"),
    ]:
        out = runner.invoke(app, ["infer", name])
        assert out.exit_code == 1, (name, out.output)
        assert said in out.output and "Traceback" not in out.output, out.output
        assert out.output.count("\n") == 1, out.output
    one = runner.invoke(app, ["infer", "one.csv"])
    assert one.exit_code == 0 and _fields(one.output)["a"]["kind"] == "int"
    bad_key = runner.invoke(app, ["infer", "one.csv", "--key", "zz"])
    assert bad_key.exit_code == 1 and "--key 'zz' is not a column" in bad_key.output
