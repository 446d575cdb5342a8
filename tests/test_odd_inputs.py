"""Inputs that used to go wrong and now read right: each on a file made here, values checked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import tracer_kit as tk

from .conftest import CHURN_HEADER

H = CHURN_HEADER


def _run(path, **kw):
    return tk.run_pipeline(path, "customer_churn", report=False, **kw)


def _processed(result) -> pl.DataFrame:
    return pl.read_parquet(result.outputs["parquet"])


def test_cr_only_line_endings(workdir):
    rows = ["C1,2024-05-01,2023-01-01,10,1,3,basic", "C2,2024-05-02,2023-01-01,11,1,3,basic"]
    (workdir / "mac.csv").write_bytes("\r".join([H, *rows, ""]).encode())
    r = _run("mac.csv")
    assert (r.rows_in, r.rows_valid) == (2, 2)
    assert _processed(r)["total_value"].to_list() == [10.0, 11.0]


def test_excel_sep_line_names_the_delimiter_and_lines_stay_physical(workdir):
    text = "sep=;\n" + H.replace(",", ";") + "\n"
    text += "C1;2024-05-01;2023-01-01;1.234,50;1;3;basic\nC2;2024-05-02;2023-01-01;12,5;1;3;basic\n"
    (workdir / "excel.csv").write_text(text)
    r = _run("excel.csv")
    assert _processed(r)["total_value"].to_list() == [1234.5, 12.5]  # 1.234,50 -> 1234.5
    lines = tk.query("SELECT source_line FROM bronze_customer_churn ORDER BY source_row")
    assert lines["source_line"].to_list() == [3, 4]  # sep= is line 1, the header line 2


def test_thousands_separators_with_decimal_points(workdir):
    rows = [
        'C1,2024-05-01,2023-01-01,"1,234.50",1,3,basic',
        "C2,2024-05-02,2023-01-01,7.25,1,3,basic",
    ]
    (workdir / "k.csv").write_text("\n".join([H, *rows]) + "\n")
    r = _run("k.csv")
    assert _processed(r)["total_value"].to_list() == [1234.5, 7.25]


def test_one_nul_byte_quarantines_that_row_only(workdir):
    rows = ["C1,2024-05-01,2023-01-01,10,1,3,ba\x00sic", "C2,2024-05-02,2023-01-01,11,1,3,basic"]
    (workdir / "nul.csv").write_bytes(("\n".join([H, *rows]) + "\n").encode())
    r = _run("nul.csv")
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (2, 1, 1)
    q = tk.query(
        "SELECT source_row, source_line, reasons, raw::VARCHAR AS raw FROM quarantine_customer_churn"
    )
    assert q["source_row"].to_list() == [1] and q["source_line"].to_list() == [2]
    assert q["reasons"].to_list() == [["nul_byte"]]
    assert "ba\u2400sic" in q["raw"][0]


def test_null_tokens_are_nulls_in_optional_fields_and_missing_in_required(workdir):
    rows = [
        "C1,2024-05-01,2023-01-01,5,NA,N/A,null",
        "C2,2024-05-02,2023-01-01,6,-,None,NaN",
        "C3,N/A,2023-01-01,7,1,2,basic",
    ]
    (workdir / "tok.csv").write_text("\n".join([H, *rows]) + "\n")
    r = _run("tok.csv")
    out = _processed(r)
    assert out["customer_id"].to_list() == ["C1", "C2"]
    assert out["support_tickets"].to_list() == [None, None]
    assert out["plan_type"].to_list() == [None, None]
    q = tk.query("SELECT source_row, reasons FROM quarantine_customer_churn")
    assert q.rows() == [(3, ["missing_required"])]


def test_month_name_dates_in_every_order_mixed_with_iso_and_slash(workdir):
    rows = [
        "C1,Jan 5 2024,5 January 2023,1,1,1,basic",
        'C2,"January 5, 2024",2023-01-02,1,1,1,basic',
        "C3,2024-02-03,01/31/2023,1,1,1,basic",
        "C4,5 Jan 2024,Feb 1 2023,1,1,1,basic",
    ]
    (workdir / "months.csv").write_text("\n".join([H, *rows]) + "\n")
    r = _run("months.csv")
    out = _processed(r)
    assert out["last_activity_date"].to_list() == [
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 5),
        dt.date(2024, 2, 3),
        dt.date(2024, 1, 5),
    ]
    assert out["account_created_date"].to_list() == [
        dt.date(2023, 1, 5),
        dt.date(2023, 1, 2),
        dt.date(2023, 1, 31),
        dt.date(2023, 2, 1),
    ]


def test_a_csv_starting_with_a_bracket_is_not_xml(workdir):
    (workdir / "lt.csv").write_text("<id>,name\n1,a\n")
    ing = tk.read_table("lt.csv")
    assert ing.info.format == "csv" and ing.info.columns == ["<id>", "name"]


def test_excel_cover_page_is_skipped_for_the_sheet_that_fits(workdir):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active.append(["Quarterly customer export"])
    data = wb.create_sheet("Customers")
    data.append(H.split(","))
    data.append(["C1", "2024-05-01", "2023-01-01", 10, 1, 3, "basic"])
    wb.save(workdir / "book.xlsx")
    r = _run("book.xlsx")
    assert (r.rows_in, r.rows_valid) == (1, 1)
    assert (
        tk.query("SELECT read_options FROM runs")["read_options"][0].count('"sheet": "Customers"')
        == 1
    )


@pytest.mark.parametrize("name", ["source_row", "source_line", "extras", "run_id", "_rec", "__dup"])
def test_a_user_column_named_like_ours_is_kept(workdir, name):
    rows = ["C1,2024-05-01,2023-01-01,10,1,3,basic,x1", "C2,2024-05-02,2023-01-01,11,1,3,basic,x2"]
    (workdir / "own.csv").write_text("\n".join([H + "," + name, *rows]) + "\n")
    r = _run("own.csv")
    assert (r.rows_in, r.rows_valid) == (2, 2)
    kept = f"{name.lstrip('_')}_original"
    assert _processed(r)["extras"].to_list() == [f'{{"{kept}":"x1"}}', f'{{"{kept}":"x2"}}']
    assert _processed(r)["source_row"].to_list() == [1, 2]


def test_map_matches_case_insensitively_when_unambiguous(workdir):
    rows = ["C1,2024-05-01,2023-01-01,10"]
    (workdir / "m.csv").write_text(
        "ID,last_activity_date,account_created_date,total_value\n" + rows[0] + "\n"
    )
    r = _run("m.csv", config={"column_map": {"id": "customer_id"}})
    assert r.params["column_map"] == {"ID": "customer_id"}


def test_a_date_impossible_both_ways_does_not_undecide_the_column(workdir):
    # 17/11/2022 proves day-first; 13/13/2023 is invalid either way and proves nothing
    rows = [
        "C1,14/06/2024,17/11/2022,1,1,1,basic",
        "C2,14/06/2024,13/13/2023,1,1,1,basic",
        "C3,14/06/2024,03/02/2021,1,1,1,basic",
    ]
    (workdir / "eu.csv").write_text("\n".join([H, *rows]) + "\n")
    r = _run("eu.csv")
    assert (r.rows_valid, r.rows_quarantined) == (2, 1)
    out = _processed(r)
    assert out["account_created_date"].to_list() == [dt.date(2022, 11, 17), dt.date(2021, 2, 3)]
    q = tk.query("SELECT source_row, reasons FROM quarantine_customer_churn")
    assert q.rows() == [(2, ["invalid_date"])]
    assert r.params["date_formats"]["account_created_date"]["convention"] == "dmy"


def test_profile_types_decided_by_every_row_not_the_first(workdir):
    """The first rows only rule columns out; a value past them still decides the type."""
    from tracer_kit.profiling import SCREEN_ROWS

    n = SCREEN_ROWS + 5
    frame = pl.DataFrame(
        {
            "late_text": [str(i) for i in range(n - 1)] + ["oops"],  # numbers, then text
            "late_float": [str(i) for i in range(n - 1)] + ["2.5"],  # ints, then a float
            "iso": ["2024-01-02"] * n,
            "late_dmy": ["01/02/2024"] * (n - 1) + ["25/02/2024"],  # day-first shows late
            "late_not_date": ["2024-01-02"] * (n - 1) + ["soon"],
            "words": ["a"] + [str(i) for i in range(n - 1)],  # ruled out by its first row
        }
    )
    frame.write_csv(workdir / "late.csv")
    types = dict(tk.profile(workdir / "late.csv").columns.select("column", "dtype").iter_rows())
    assert types == {
        "late_text": "String",
        "late_float": "Float64",
        "iso": "Date",
        "late_dmy": "Date",
        "late_not_date": "String",
        "words": "String",
    }
    cols = tk.profile(workdir / "late.csv").columns
    row = cols.filter(pl.col("column") == "late_dmy").row(0, named=True)
    assert (row["min"], row["max"]) == ("2024-02-01", "2024-02-25")  # read day-first
