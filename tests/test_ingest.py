"""Every format to the same text frame; every bad file to one clear sentence."""

from __future__ import annotations

import gzip
import json
import string
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracer_kit as tk
from tracer_kit.settings import settings as tunables

ROWS = [
    {"customer_id": "C1", "total_value": "10.5", "plan_type": "basic"},
    {"customer_id": "C2", "total_value": "3", "plan_type": None},
    {"customer_id": "C3", "total_value": "0.25", "plan_type": "premium"},
]
EXPECTED = pl.DataFrame(
    ROWS, schema={"customer_id": pl.String, "total_value": pl.String, "plan_type": pl.String}
)


def data_only(ing: tk.Ingested) -> pl.DataFrame:
    return ing.frame.collect().drop("source_row", "source_line")


def write_xlsx(
    path: Path, rows: list[list], sheet: str = "Data", extra_sheet: bool = False
) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    if extra_sheet:
        other = wb.create_sheet("Other")
        other.append(["x"])
        other.append([42])
    wb.save(path)
    return path


@pytest.mark.parametrize(
    ("name", "content", "fmt", "delimiter"),
    [
        (
            "a.csv",
            "customer_id,total_value,plan_type\nC1,10.5,basic\nC2,3,\nC3,0.25,premium\n",
            "csv",
            ",",
        ),
        (
            "a.tsv",
            "customer_id\ttotal_value\tplan_type\nC1\t10.5\tbasic\nC2\t3\t\nC3\t0.25\tpremium\n",
            "csv",
            "\t",
        ),
        (
            "a.psv",
            "customer_id|total_value|plan_type\nC1|10.5|basic\nC2|3|\nC3|0.25|premium\n",
            "csv",
            "|",
        ),
        (
            "a.csv",
            "customer_id,total_value,plan_type\r\nC1,10.5,basic\r\nC2,3,\r\nC3,0.25,premium\r\n",
            "csv",
            ",",
        ),
        (
            "a.json",
            json.dumps(
                [
                    {"customer_id": "C1", "total_value": 10.5, "plan_type": "basic"},
                    {"customer_id": "C2", "total_value": 3, "plan_type": None},
                    {"customer_id": "C3", "total_value": 0.25, "plan_type": "premium"},
                ]
            ),
            "json",
            None,
        ),
        (
            "a.ndjson",
            '{"customer_id":"C1","total_value":10.5,"plan_type":"basic"}\n'
            '{"customer_id":"C2","total_value":3,"plan_type":null}\n'
            '{"customer_id":"C3","total_value":0.25,"plan_type":"premium"}\n',
            "ndjson",
            None,
        ),
        (
            "a.xml",
            "<?xml version='1.0'?><rows><row><customer_id>C1</customer_id><total_value>10.5</total_value>"
            "<plan_type>basic</plan_type></row><row><customer_id>C2</customer_id><total_value>3</total_value>"
            "<plan_type/></row><row><customer_id>C3</customer_id><total_value>0.25</total_value>"
            "<plan_type>premium</plan_type></row></rows>",
            "xml",
            None,
        ),
    ],
)
def test_text_formats_read_the_same(tmp_path, name, content, fmt, delimiter):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8", newline="")
    ing = tk.read_table(path)
    assert ing.info.format == fmt
    assert ing.info.delimiter == delimiter
    assert ing.info.row_count == 3
    assert data_only(ing).equals(EXPECTED)
    assert ing.frame.collect()["source_row"].to_list() == [1, 2, 3]


def test_parquet_excel_gzip_zstd(tmp_path):
    import zstandard

    typed = pl.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "total_value": [10.5, 3.0, 0.25],
            "plan_type": ["basic", None, "premium"],
        }
    )
    typed.write_parquet(tmp_path / "a.parquet")
    ing = tk.read_table(tmp_path / "a.parquet")
    assert ing.info.format == "parquet" and ing.info.row_count == 3
    assert data_only(ing)["total_value"].to_list() == ["10.5", "3.0", "0.25"]
    assert ing.frame.collect()["source_line"].to_list() == [None, None, None]

    write_xlsx(
        tmp_path / "a.xlsx",
        [
            ["customer_id", "total_value", "plan_type"],
            ["C1", 10.5, "basic"],
            ["C2", 3, None],
            ["C3", 0.25, "premium"],
        ],
        extra_sheet=True,
    )
    ing = tk.read_table(tmp_path / "a.xlsx")
    assert (ing.info.format, ing.info.sheet) == ("excel", "Data")
    assert data_only(ing)["customer_id"].to_list() == ["C1", "C2", "C3"]

    csv = b"customer_id,total_value,plan_type\nC1,10.5,basic\nC2,3,\nC3,0.25,premium\n"
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(csv))
    ing = tk.read_table(tmp_path / "a.csv.gz")
    assert (ing.info.format, ing.info.compression) == ("csv", "gzip")
    assert data_only(ing).equals(EXPECTED)
    (tmp_path / "a.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(csv))
    ing = tk.read_table(tmp_path / "a.csv.zst")
    assert (ing.info.format, ing.info.compression) == ("csv", "zstd")
    assert data_only(ing).equals(EXPECTED)


def test_nested_parquet_values_become_json_text(tmp_path):
    pl.DataFrame(
        {"a": [1, 2], "tags": [["x", "y"], []], "meta": [{"k": 1}, {"k": None}]}
    ).write_parquet(tmp_path / "n.parquet")
    df = data_only(tk.read_table(tmp_path / "n.parquet"))
    assert df.rows() == [("1", '["x","y"]', '{"k":1}'), ("2", "[]", '{"k":null}')]


def test_excel_sheet_by_name_and_index(tmp_path):
    path = write_xlsx(tmp_path / "b.xlsx", [["a"], [1]], extra_sheet=True)
    other = tk.read_table(path, sheet="Other")
    assert (other.info.columns, data_only(other)["x"].to_list()) == (["x"], ["42"])
    assert tk.read_table(path, sheet=0).info.sheet == "Data"
    assert tk.read_table(path, sheet=1).info.sheet == "Other"
    with pytest.raises(
        tk.IngestError, match="no sheet named 'Nope'; its sheets are 'Data', 'Other'"
    ):
        tk.read_table(path, sheet="Nope")


def test_encodings_detected_and_transcoded(tmp_path):
    text = "name,city\nJosé,Zürich\nRenée,Köln\n"
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    (tmp_path / "cp.csv").write_bytes((text + "Euro €,x\n").encode("cp1252"))
    (tmp_path / "bom.csv").write_bytes(text.encode("utf-8-sig"))
    (tmp_path / "u16.csv").write_bytes(text.encode("utf-16"))
    for name, enc in [
        ("latin.csv", {"latin-1", "cp1252"}),
        ("cp.csv", {"cp1252"}),
        ("bom.csv", {"utf-8-sig"}),
        ("u16.csv", {"utf-16"}),
    ]:
        ing = tk.read_table(tmp_path / name)
        assert ing.info.encoding in enc, name
        df = data_only(ing)
        assert df.columns == ["name", "city"], name
        assert df["city"].to_list()[:2] == ["Zürich", "Köln"], name


def test_semicolon_with_decimal_comma(tmp_path):
    (tmp_path / "eu.csv").write_text("id;amount\nA;1,5\nB;2,25\n")
    ing = tk.read_table(tmp_path / "eu.csv")
    assert (ing.info.delimiter, ing.info.decimal) == (";", ",")
    assert data_only(ing)["amount"].to_list() == ["1,5", "2,25"]
    prof = (
        tk.profile(tmp_path / "eu.csv")
        .columns.filter(pl.col("column") == "amount")
        .row(0, named=True)
    )
    assert (prof["dtype"], prof["min"], prof["max"], prof["mean"]) == (
        "Float64",
        "1.5",
        "2.25",
        1.875,
    )


def test_quoted_delimiters_newlines_and_source_lines(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        'id,note\n1,"a, b"\n2,"line one\nline two\nline three"\n3,"say ""hi"""\n4,end\n'
    )
    ing = tk.read_table(path)
    df = ing.frame.collect()
    assert df["note"].to_list() == ["a, b", "line one\nline two\nline three", 'say "hi"', "end"]
    assert df["source_row"].to_list() == [1, 2, 3, 4]
    assert df["source_line"].to_list() == [2, 3, 6, 7]


def test_one_megabyte_field(tmp_path):
    big = "x" * 1_000_000
    (tmp_path / "big.csv").write_text(f"id,blob\n1,{big}\n2,small\n")
    df = data_only(tk.read_table(tmp_path / "big.csv"))
    assert len(df["blob"][0]) == 1_000_000 and df["blob"][1] == "small"


def test_ragged_rows_error_names_line(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3\n4,5,6\n7,8\n")
    with pytest.raises(tk.IngestError) as err:
        tk.read_table(tmp_path / "r.csv")
    assert str(err.value) == (
        f"{tmp_path / 'r.csv'}: line 3 has 1 fields, expected 2 (ragged row; use "
        "on_bad_lines='quarantine' to keep the other rows)"
    )
    assert err.value.line == 3


def test_ragged_rows_quarantined_with_text_and_lines(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3\n\n4,5,6\n7,8\n")
    ing = tk.read_table(tmp_path / "r.csv", on_bad_lines="quarantine")
    df = ing.frame.collect()
    # the blank line 4 is not a record; rows keep their numbers
    assert df.select("source_row", "source_line", "a").rows() == [(1, 2, "1"), (4, 6, "7")]
    assert ing.rejects.select("source_row", "source_line", "raw").rows() == [
        (2, 3, "3"),
        (3, 5, "4,5,6"),
    ]
    assert ing.rejects["reason"].to_list() == [
        "ragged_row: 1 fields, expected 2",
        "ragged_row: 3 fields, expected 2",
    ]
    assert ing.info.row_count == 4


def test_invalid_utf8_after_the_sample(tmp_path):
    path = tmp_path / "late.csv"
    good = "".join(f"{i},ok\n" for i in range(60_000))
    path.write_bytes(b"id,v\n" + good.encode() + b"99,bad \xff byte\n100,fine\n")
    with pytest.raises(tk.IngestError, match="line 60002 is not valid UTF-8"):
        tk.read_table(path)
    ing = tk.read_table(path, on_bad_lines="quarantine")
    assert ing.rejects.select("source_row", "source_line").rows() == [(60_001, 60_002)]
    assert ing.frame.collect().height == 60_001


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty (0 bytes)"),
        ("blank.csv", b"  \n\t\n", "contains only whitespace"),
        ("header.csv", b"a,b,c\n", "has a header but no data rows"),
        ("garbage.csv", bytes(range(256)) * 20, "looks like binary data"),
        ("empty.xlsx", b"", "is empty (0 bytes)"),
        ("fake.xlsx", b"PK\x03\x04 not really a zip", "damaged"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "legacy .xls"),
        ("bad.json", b'[{"a": 1}, {"a": ', "is not valid JSON"),
        ("bad.xml", b"<rows><row><a>1</a></row>", "is not well-formed XML"),
        ("dupe.csv", b"a,b,a\n1,2,3\n", "names column 'a' twice"),
        (
            "open.csv",
            b'a,b\n1,"never closed\n2,3\n',
            "quoted field opened on line 2 is never closed",
        ),
    ],
)
def test_bad_files_get_one_clear_sentence(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(tk.IngestError) as err:
        tk.read_table(path)
    text = str(err.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_wrong_extension_warns_and_reads_content(tmp_path):
    path = tmp_path / "really_csv.json"
    path.write_text("a,b\n1,2\n")
    ing = tk.read_table(path)
    assert ing.info.format == "csv"
    assert "the extension says json but the content is csv" in ing.info.warnings[0]


def test_size_limit_counts_decompressed_bytes(tmp_path):
    payload = b"a,b\n" + b"1,2\n" * 10_000
    (tmp_path / "big.csv.gz").write_bytes(gzip.compress(payload))
    with pytest.raises(tk.IngestError, match="larger than the size limit"):
        tk.read_table(tmp_path / "big.csv.gz", max_bytes=1000)
    assert tk.read_table(tmp_path / "big.csv.gz", max_bytes=10**6).info.row_count == 10_000


def test_file_info_hash_and_options(tmp_path):
    import hashlib

    path = tmp_path / "h.csv"
    path.write_bytes(b"a,b\n1,2\n")
    info = tk.read_table(path).info
    assert info.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert info.size == 8
    assert info.read_options() == {
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "decimal": ".",
        "sheet": None,
    }
    assert len(info.read_options_hash()) == 64


TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " ,;|\"'\n\t-_.éüß€", min_size=1, max_size=12
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
)
def test_roundtrip_property(tmp_path, data, delimiter, encoding):
    n = data.draw(st.integers(min_value=1, max_value=8))
    strings = data.draw(st.lists(TEXT.filter(lambda s: s.strip() == s), min_size=n, max_size=n))
    ints = data.draw(st.lists(st.integers(-(10**12), 10**12), min_size=n, max_size=n))
    floats = data.draw(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=n, max_size=n)
    )
    df = pl.DataFrame({"s": strings, "i": ints, "f": floats})
    path = tmp_path / f"prop-{abs(hash((delimiter, encoding, tuple(strings))))}.csv"
    text = df.write_csv(
        separator=delimiter, quote_style="always" if delimiter != "," else "necessary"
    )
    path.write_bytes(text.encode(encoding))
    ing = tk.read_table(path, delimiter=delimiter)
    back = data_only(ing)
    assert back["s"].to_list() == strings
    assert back["i"].cast(pl.Int64).to_list() == ints
    assert back["f"].cast(pl.Float64).to_list() == floats


def test_excel_typed_cells_keep_their_text_form(tmp_path):
    import datetime as dt

    path = write_xlsx(
        tmp_path / "typed.xlsx",
        [
            ["id", "day", "at", "amount"],
            [1001, dt.date(2025, 6, 1), dt.datetime(2024, 1, 1, 10, 30), 12.5],
        ],
    )
    df = data_only(tk.read_table(path))
    assert df.row(0) == ("1001", "2025-06-01", "2024-01-01 10:30:00", "12.5")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_record_scan_is_the_same_for_any_chunk_size(tmp_path, monkeypatch, chunk):
    import tracer_kit.ingest as ingest

    content = (
        b'id,note\r\n1,"a, b"\r\n2,"line one\nline two"\r\n\r\n3,x,extra\r\n4,caf\xc3\xa9\r\n'
        b'5,"say ""hi"""\r\n6,bad \xff\r\n7,end'
    )
    path = tmp_path / "tricky.csv"
    path.write_bytes(content)
    expected = ingest.read_table(path, on_bad_lines="quarantine", encoding="utf-8")
    monkeypatch.setattr(tunables, "read_chunk_bytes", chunk)
    got = ingest.read_table(path, on_bad_lines="quarantine", encoding="utf-8")
    assert got.frame.collect().equals(expected.frame.collect())
    assert got.rejects.equals(expected.rejects)
    assert got.info.sha256 == expected.info.sha256
    assert expected.frame.collect().select("source_row", "source_line").rows() == [
        (1, 2),
        (2, 3),
        (4, 7),
        (5, 8),
        (7, 10),
    ]
    assert expected.rejects.select("source_row", "source_line").rows() == [(3, 6), (6, 9)]
