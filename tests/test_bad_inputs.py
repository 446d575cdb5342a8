"""Inputs never crash the product: a generated set of bad files and bad options through `tracer run`.

Each case asserts the exit code, exactly one line on stderr, and no traceback, "internal
error" or polars query plan. Most are refused before any notebook kernel starts.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import CHURN_HEADER, venv_bin

pytestmark = pytest.mark.slow

HEADER = (CHURN_HEADER + "\n").encode()
ROW = b"C1,2024-05-01,2023-01-01,10.5,1,3,basic\n"
GOOD = HEADER + ROW + b"C2,2024-05-02,2023-02-01,20,0,5,premium\n"
CONFLICT = (
    HEADER + ROW + b"<<<<<<< HEAD\nC2,2024-05-02,2023-02-01,20,0,5,premium\n=======\n"
    b"C2,2024-05-03,2023-02-01,21,0,5,premium\n>>>>>>> branch\n"
)
LATIN1 = "Cé,2024-05-01,2023-01-01,10,1,3,basic\n".encode("latin-1")


def _bomb() -> bytes:
    """150 MB of zeros after a churn header, gzipped to about 150 kB (a 1,000:1 ratio)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as out:
        out.write(HEADER)
        for _ in range(150):
            out.write(b"0" * 1_000_000)
    return buf.getvalue()


BOMB = _bomb()


def _xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _zip_of_text() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hi")
    return buf.getvalue()


# (file name, content: bytes, "dir" or "missing"; extra arguments; exit code; words the line must hold)
CASES = [
    ("empty.csv", b"", [], 1, "is empty (0 bytes)"),
    ("blank.csv", b"  \n\n \t\n", [], 1, "only whitespace"),
    ("header_only.csv", HEADER, [], 1, "header but no data rows"),
    ("all_nul.csv", b"\x00" * 4096, [], 1, "holds only NUL bytes"),
    ("random.csv", bytes(range(256)) * 40, [], 1, "binary data"),
    ("image.csv", b"\x89PNG\r\n\x1a\n" + b"\x00\x01\x02" * 200, [], 1, "binary data"),
    ("legacy.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, [], 1, "legacy .xls"),
    ("archive.xlsx", _zip_of_text(), [], 1, "not an Excel .xlsx workbook"),
    ("damaged.xlsx", b"PK\x03\x04" + b"garbage" * 50, [], 1, "damaged"),
    ("truncated.csv.gz", gzip.compress(GOOD * 50)[:60], [], 1, "not a readable gzip file"),
    ("empty.csv.gz", gzip.compress(b""), [], 1, "empty gzip archive"),
    ("bad.csv.zst", b"\x28\xb5\x2f\xfd" + b"nonsense" * 20, [], 1, "not a readable zstd file"),
    ("broken.json", b'[{"customer_id": "C1", ', [], 1, "not valid JSON"),
    ("object.json", b'{"a": 1, "b": 2}', [], 1, "needs fields missing"),
    ("numbers.json", b"[1, 2, 3]", [], 1, "element 1 is a int"),
    ("lines.ndjson", b'{"customer_id": "C1"}\nnot json\n', ["--on-bad-lines", "error"], 1, "line 2"),
    ("broken.xml", b"<rows><row><customer_id>C1</customer_id></row>", [], 1, "not well-formed XML"),
    ("norecords.xml", b"<rows/>", [], 1, "no repeated record elements"),
    ("truncated.parquet", b"PAR1" + b"\x00" * 100, [], 1, "not a readable Parquet file"),
    ("dup_header.csv", b"customer_id,customer_id,x\n1,2,3\n", [], 1, "names column 'customer_id' twice"),
    ("empty_name.csv", b"customer_id,,x\n1,2,3\n", [], 1, "empty column name at position 2"),
    ("missing_field.csv", b"CustomerID,seen,total_value\nC1,2024-01-01,5\n", [], 1, "'last_activity_date'"),
    ("conflict.csv", CONFLICT, [], 1, "line 3 is a git conflict marker ('<<<<<<< HEAD')"),
    ("ragged.csv", HEADER + ROW + b"C2,2024-05-02\n", ["--on-bad-lines", "error"], 1, "--on-bad-lines quarantine"),
    ("nul_error.csv", HEADER + b"C1,2024-05-01,2023-01-01,10,1,3,ba\x00sic\n", ["--on-bad-lines", "error"], 1, "line 2 holds a NUL byte in 'plan_type'"),
    ("latin1.csv", HEADER + LATIN1 + ROW * 3000 + LATIN1, ["--on-bad-lines", "error", "--encoding", "utf-8"], 1, "--encoding cp1252"),
    ("map_missing.csv", GOOD, ["--map", "Nope=customer_id"], 1, "--map Nope=... names column 'Nope'"),
    ("map_clash.csv", GOOD, ["--map", "plan_type=customer_id"], 1, "would both become field 'customer_id'"),
    ("map_syntax.csv", GOOD, ["--map", "customer_id"], 1, "should look like SRC=DST"),
    ("refdate.csv", GOOD, ["--reference-date", "30/06/2024"], 1, "--reference-date 30/06/2024 is not a date in the expected format YYYY-MM-DD"),
    ("sheet_index.xlsx", _xlsx({"Data": [["customer_id"], ["C1"]]}), ["--sheet", "5"], 1, "sheet index 5 is out of range"),
    ("sheet_name.xlsx", _xlsx({"Data": [["customer_id"], ["C1"]]}), ["--sheet", "Nope"], 1, "its sheets are 'Data'"),
    ("cover_only.xlsx", _xlsx({"Cover": [["Report"]], "Notes": [["x", "y"]]}), [], 1, "no sheet has the columns"),
    ("format.csv", GOOD, ["--format", "bogus"], 1, "--format bogus should be one of"),
    ("delim.csv", GOOD, ["--delimiter", "ab"], 1, "--delimiter 'ab' should be a single character"),
    ("encoding.csv", GOOD, ["--encoding", "bogus"], 1, "--encoding bogus is not a known text encoding"),
    ("maxbytes.csv", GOOD, ["--max-bytes", "10"], 1, "--max-bytes"),
    ("folder", "dir", [], 1, "is a folder"),
    ("nonexistent.csv", "missing", [], 1, "no such file"),
    ("config_missing.csv", GOOD, ["--config", "nope.yaml"], 1, "cannot read config file"),
    ("config_yaml.csv", GOOD, ["--config", "bad.yaml"], 1, "not valid YAML at line 2"),
    ("config_key.csv", GOOD, ["--config", "unknown.json"], 1, "colour"),
    ("config_value.csv", GOOD, ["--config", "badthreshold.json"], 1, "thresholds.min_score"),
    ("blueprint.csv", GOOD, ["-b", "nope"], 1, "unknown blueprint 'nope'"),
    ("format_mismatch.csv", GOOD, ["--format", "parquet"], 1, "not a readable Parquet file"),
    # the trust contract's cases: each was "internal error" or worse before
    ("bomb.csv.gz", BOMB, [], 1, "refused as a likely decompression bomb"),
    ("bomb_limit.csv.gz", BOMB, ["--max-bytes", "100000000"], 1, "size limit of 100.0 MB"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, [], 1, "nests more than about 1,000 levels deep"),
    ("long_header.csv", b"a" * 140_000 + b",b\n1,2\n", [], 1, "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa… (140,000 characters)'"),
    ("fifo.csv", "fifo", [], 1, "is a named pipe (FIFO), not a file"),
    ("sqlite:///vacuum.db", "sqlite", ["--query", "VACUUM INTO 'copy.db'"], 1, "only a read statement may run on a source"),
    ("sqlite:///attach.db", "sqlite", ["--query", "ATTACH 'other.db' AS o"], 1, "only a read statement may run on a source"),
    ("postgresql://u:p@[::1/db", "missing", ["--table", "t"], 1, "is not a valid URL (an IPv6 address needs both brackets"),
    ("https://[::1/customers.json", "missing", [], 1, "is not a valid URL"),
    ("all_bad.csv", HEADER + b"".join(b"C%d,yesterday,someday,abc,x,y,basic\n" % i for i in range(20)), [], 3, "quality gate failed: 1 critical issue(s): no_valid_rows"),
]  # fmt: skip


def _materialise(root: Path, name: str, content: object) -> Path:
    path = root / name
    if content == "sqlite":  # a real database file for a sqlite:/// URL
        import sqlite3

        db = root / name.removeprefix("sqlite:///")
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY)")
            con.execute("INSERT INTO customers VALUES ('C1')")
        return db
    if content == "fifo":
        os.mkfifo(path)
    elif content == "dir":
        path.mkdir()
    elif content != "missing":
        path.write_bytes(content)  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "bad.yaml").write_text("thresholds: [1, 2\n")
    (root / "unknown.json").write_text('{"colour": "red"}')
    (root / "badthreshold.json").write_text('{"thresholds": {"min_score": "high"}}')

    def one(case):
        name, content, args, _, _ = case
        _materialise(root, name, content)
        blueprint = [] if "-b" in args else ["-b", "customer_churn"]
        cmd = [venv_bin("tracer"), "run", name, *blueprint, *args, "--warehouse", "w.duckdb"]
        return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip([c[0] for c in CASES], pool.map(one, CASES), strict=True))


def test_the_set_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(outcomes, case):
    name, _, _, code, words = case
    done = outcomes[name]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for bad in ("Traceback", "internal error", "FAILED HERE", "RESOLVING", "polars"):
        assert bad not in done.stderr
    assert words in lines[0]
    assert len(lines[0]) < 2_000  # never a column name or a value quoted whole


def test_nothing_is_written_by_a_refused_source_query(outcomes, tmp_path_factory):
    roots = {p.parent for p in Path(tmp_path_factory.getbasetemp()).glob("bad*/vacuum.db")}
    assert roots and all(not (root / "copy.db").exists() for root in roots)


FILE_CASES = [c for c in CASES if not c[2] and c[3] == 1 and "://" not in c[0]]
READABLE_WITHOUT_A_BLUEPRINT = {
    "object.json",
    "missing_field.csv",
    "long_header.csv",
}  # only the blueprint fails


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """The same bad files through `tracer validate` and `tracer profile`."""
    root = tmp_path_factory.mktemp("bad-check")

    def one(job):
        command, (name, content, *_rest) = job
        _materialise(root, f"{command}-{name}", content)
        args = ["-b", "customer_churn"] if command == "validate" else []
        return subprocess.run(
            [venv_bin("tracer"), command, f"{command}-{name}", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )

    jobs = [(command, case) for command in ("validate", "profile") for case in FILE_CASES]
    with ThreadPoolExecutor(2) as pool:
        return {
            (c, case[0]): done for (c, case), done in zip(jobs, pool.map(one, jobs), strict=True)
        }


@pytest.mark.parametrize("command", ["validate", "profile"])
def test_validate_and_profile_refuse_bad_files_in_one_line(checked, command):
    for name, *_ in FILE_CASES:
        done = checked[(command, name)]
        if command == "profile" and name in READABLE_WITHOUT_A_BLUEPRINT:
            assert done.returncode == 0, (name, done.stderr)  # profiling needs no blueprint
            continue
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, (name, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, name
