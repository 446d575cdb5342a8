"""Database sources (SQLite and DuckDB files, a real PostgreSQL server) and the export to PostgreSQL.

The PostgreSQL server is the tests' own (``tests/postgres.py``): initdb and pg_ctl in a
temporary folder, password logins over TCP on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

import tracer_kit as tk
from tracer_kit.connections import parse_database_url, redact

from .conftest import REPO, venv_bin
from .postgres import PASSWORD

COLUMNS = [
    "customer_id",
    "last_activity_date",
    "account_created_date",
    "total_value",
    "support_tickets",
    "feature_usage_count",
    "plan_type",
]
# Six customers inserted out of key order: C005 twice (the second, row 6 in key order, is a
# duplicate_id), C004's last activity is no date (invalid_date). Valid: C001, C002, C003, C005.
ROWS = [
    ("C003", "2024-05-01", "2023-01-01", "300.0", "1", "30", "premium"),
    ("C001", "2024-06-01", "2022-01-01", "100.5", "0", "10", "basic"),
    ("C005", "2024-06-15", "2021-06-01", "50", "2", "5", "standard"),
    ("C004", "not a date", "2020-01-01", "10", "0", "1", "basic"),
    ("C002", "2024-06-30", "2024-01-01", "20", None, "2", "enterprise"),
]
RUN_DATE = "2024-07-01"


def _run(folder: Path, source: str, run_date: str = RUN_DATE, **config) -> tk.RunResult:
    return tk.run_pipeline(
        source,
        "customer_churn",
        config=config,
        warehouse=folder / "w.duckdb",
        output_dir=folder / "reports",
        processed_dir=folder / "processed",
        run_date=run_date,
        report=False,
    )


SAMPLE_DATE = "2026-01-01"  # the demo sample's activity runs to 2025


def _sqlite_file(path: Path, rows=ROWS) -> Path:
    con = sqlite3.connect(path)
    # a composite key whose first part is not the first column: the read orders by (id, plan)
    con.execute(
        "CREATE TABLE customers (last_activity_date TEXT, customer_id TEXT, account_created_date TEXT,"
        " total_value REAL, support_tickets INTEGER, feature_usage_count INTEGER, plan_type TEXT,"
        " PRIMARY KEY (customer_id, plan_type))"
    )
    order = [1, 0, 2, 3, 4, 5, 6]
    con.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            tuple(r[i] for i in order)
            for r in [*rows, ("C005", "2024-06-20", "2021-06-01", "60", "1", "6", "zz")]
        ],
    )
    con.commit()
    con.close()
    return path


def test_a_sqlite_table_is_read_in_key_order_and_run(workdir):
    db = _sqlite_file(workdir / "crm.db")
    r = _run(workdir, "sqlite:///crm.db", table="customers")
    # six records in key order: C001, C002, C003, C004 (invalid_date), C005, C005/zz (duplicate)
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (6, 4, 2)
    assert r.input_path == "sqlite:///crm.db"
    assert r.dataset == "customers"
    processed = pl.read_parquet(r.outputs["parquet"])
    assert processed.select("source_row", "customer_id").rows() == [
        (1, "C001"),
        (2, "C002"),
        (3, "C003"),
        (5, "C005"),
    ]
    # REAL 100.5 comes back as the text SQLite gives it; C002's tickets are NULL (no value)
    assert processed.filter(pl.col("customer_id") == "C001")["total_value"].item() == 100.5
    assert processed.filter(pl.col("customer_id") == "C002")["support_tickets"].item() is None
    quarantine = tk.query(
        "SELECT source_row, source_line, reasons FROM quarantine_customer_churn ORDER BY source_row",
        warehouse=workdir / "w.duckdb",
    )
    assert quarantine.rows() == [(4, None, ["invalid_date"]), (6, None, ["duplicate_id"])]
    # the report names the source and the table, and calls the hash a fingerprint
    report = tk.quality_report(r.run_id, warehouse=workdir / "w.duckdb").read_text()
    assert "<h2>Source</h2>" in report and '<th>Table</th><td class="mono">customers</td>' in report
    assert f'<th>Fingerprint</th><td class="mono">{r.input_sha256}</td>' in report
    # the same rows read again: the same fingerprint, and bronze adds nothing
    again = _run(workdir, "sqlite:///crm.db", table="customers")
    assert again.input_sha256 == r.input_sha256
    bronze = tk.query("SELECT count(*) FROM bronze_customer_churn", warehouse=workdir / "w.duckdb")
    assert bronze.item() == 6
    # one value changed: another fingerprint
    con = sqlite3.connect(db)
    con.execute("UPDATE customers SET total_value = 101 WHERE customer_id = 'C001'")
    con.commit()
    con.close()
    assert tk.read_table("sqlite:///crm.db", table="customers").info.sha256 != r.input_sha256


def test_a_duckdb_query_without_order_by_is_warned_about(workdir):
    con = duckdb.connect(str(workdir / "crm.duckdb"))
    frame = pl.DataFrame(ROWS, schema=COLUMNS, orient="row")
    con.register("frame", frame)
    con.execute("CREATE SCHEMA sales; CREATE TABLE sales.customers AS SELECT * FROM frame")
    con.close()
    url = f"duckdb:///{workdir / 'crm.duckdb'}"  # (an absolute path: four slashes)
    unordered = tk.read_table(url, query="SELECT * FROM sales.customers WHERE plan_type <> 'basic'")
    assert any("no ORDER BY" in w for w in unordered.info.warnings)
    assert unordered.info.row_count == 3
    ordered = tk.read_table(url, query="SELECT * FROM sales.customers ORDER BY customer_id;")
    assert not any("ORDER BY" in w for w in ordered.info.warnings)
    first = ordered.frame.collect().row(0, named=True)
    assert (first["source_row"], first["source_line"], first["customer_id"]) == (1, None, "C001")
    assert first["total_value"] == "100.5"  # the text DuckDB gives
    table = tk.read_table(url, table="sales.customers")  # no primary key: ordered by every column
    assert table.frame.collect()["customer_id"].to_list() == [
        "C001",
        "C002",
        "C003",
        "C004",
        "C005",
    ]
    r = _run(workdir, url, query="SELECT * FROM sales.customers ORDER BY customer_id")
    assert r.dataset == "customers" and r.rows_in == 5


@pytest.mark.parametrize(
    ("source", "options", "says"),
    [
        ("sqlite:///missing.db", {"table": "t"}, "sqlite:///missing.db: no such database file"),
        ("sqlite:///crm.db", {"table": "nope"}, "the table could not be read (no table 'nope')"),
        ("sqlite:///crm.db", {"query": "SELEC oops"}, 'the query could not be read (near "SELEC"'),
        ("sqlite:///crm.db", {}, "give either --table NAME or --query SQL"),
        ("sqlite:///crm.db", {"query": "SELECT * FROM customers WHERE 0"}, "the query has no rows"),
        ("data.csv", {"table": "t"}, "--table and --query read a database"),
        ("env:NO_SUCH_VARIABLE", {"table": "t"}, "the variable NO_SUCH_VARIABLE is not set"),
    ],
)
def test_bad_database_sources_give_one_line(workdir, source, options, says):
    _sqlite_file(workdir / "crm.db")
    (workdir / "data.csv").write_text("a\n1\n")
    args = ["--table", options["table"]] if "table" in options else []
    args += ["--query", options["query"]] if "query" in options else []
    cmd = [venv_bin("tracer"), "validate", source, "-b", "customer_churn", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert says in done.stderr


def test_passwords_are_redacted_and_filled_from_tracer_db_url(workdir, monkeypatch):
    assert redact("postgresql://ann:pw@h:5432/db") == "postgresql://ann:***@h:5432/db"
    assert (
        redact("postgresql://h/db?user=ann&password=pw")
        == "postgresql://h/db?user=ann&password=***"
    )
    assert redact("error at https://x:y@api/z and more") == "error at https://x:***@api/z and more"
    monkeypatch.delenv("TRACER_DB_URL", raising=False)
    (workdir / ".env").write_text(
        '# credentials\nexport TRACER_DB_URL="postgresql://ann:p%40ss@h:5432/crm"\n'
    )
    filled = parse_database_url("postgresql://h:5432/crm")
    assert filled.password == "p@ss" and filled.display() == "postgresql://ann:***@h:5432/crm"
    # a recorded URL (password ***) finds the real one the same way (tracer rerun)
    assert parse_database_url("postgresql://ann:***@h:5432/crm").password == "p@ss"
    other = parse_database_url("postgresql://h:5432/other")  # another database: nothing filled
    assert other.password is None
    assert parse_database_url("env:TRACER_DB_URL").display() == "postgresql://ann:***@h:5432/crm"


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def crm(postgres):
    """A database ``crm`` with ``customers`` (the demo sample, every value as text) and ``small``."""
    url = postgres.new_database("crm")
    sample = pl.read_csv(REPO / "data" / "samples" / "customers.csv", infer_schema_length=0)
    with psycopg.connect(url) as con:
        cols = ", ".join(f'"{c}" text' for c in sample.columns)
        con.execute(f"CREATE TABLE customers ({cols}, row_key serial PRIMARY KEY)")
        names = ", ".join(f'"{c}"' for c in sample.columns)
        with con.cursor().copy(
            f"COPY customers ({names}) FROM STDIN WITH (FORMAT csv, HEADER)"
        ) as cp:
            cp.write(sample.write_csv().encode())
        con.execute(
            "CREATE TABLE small (customer_id text PRIMARY KEY, last_activity_date date, "
            "account_created_date date, total_value numeric(10, 2), support_tickets int, "
            "feature_usage_count int, plan_type text)"
        )
        valid = [r for r in ROWS if r[1] != "not a date"]
        con.cursor().executemany("INSERT INTO small VALUES (%s, %s, %s, %s, %s, %s, %s)", valid)
    return url


def test_a_postgresql_table_gives_the_files_results(postgres, crm, workdir, sample_csv):
    from_table = _run(workdir / "table", crm, SAMPLE_DATE, table="customers")
    from_file = _run(workdir / "file", str(sample_csv), SAMPLE_DATE)
    assert (from_table.rows_in, from_table.rows_valid, from_table.rows_quarantined) == (
        from_file.rows_in,
        from_file.rows_valid,
        from_file.rows_quarantined,
    )
    assert from_table.quality_score == from_file.quality_score
    assert from_table.input_path == f"postgresql://postgres:***@127.0.0.1:{postgres.port}/crm"
    same = ["source_row", *tk.get_blueprint("customer_churn").feature_names]
    assert_frame_equal(
        pl.read_parquet(from_table.outputs["parquet"]).select(same),
        pl.read_parquet(from_file.outputs["parquet"]).select(same),
    )


def test_a_postgresql_query_keeps_typed_values_as_the_database_prints_them(crm, workdir):
    ing = tk.read_table(
        crm, query="SELECT * FROM small WHERE total_value > 30 ORDER BY customer_id"
    )
    rows = ing.frame.select("customer_id", "last_activity_date", "total_value").collect().rows()
    # numeric(10, 2) prints two decimals; dates are ISO
    assert rows == [
        ("C001", "2024-06-01", "100.50"),
        ("C003", "2024-05-01", "300.00"),
        ("C005", "2024-06-15", "50.00"),
    ]
    assert ing.info.query == "SELECT * FROM small WHERE total_value > 30 ORDER BY customer_id"
    r = _run(workdir, crm, query="SELECT * FROM small ORDER BY customer_id")
    assert (r.rows_in, r.rows_valid, r.dataset) == (4, 4, "small")


def test_export_copies_a_run_once_and_a_failed_export_writes_nothing(postgres, crm, workdir):
    r = _run(workdir, crm, SAMPLE_DATE, table="customers")
    out = postgres.new_database("exported")
    first = tk.export(r.run_id, out, warehouse=workdir / "w.duckdb")
    assert first.rows == {
        "customer_churn_processed": r.rows_out,
        "quarantine_customer_churn": r.rows_quarantined,
        "predictions_customer_churn": r.rows_out,  # one churn probability per customer
        "bronze_customer_churn": r.rows_in,
    }
    counts = "SELECT (SELECT count(*) FROM customer_churn_processed), (SELECT count(*) FROM quarantine_customer_churn), (SELECT count(*) FROM bronze_customer_churn), (SELECT count(*) FROM tracer_runs)"
    assert postgres.sql(counts, db="exported") == [(r.rows_out, r.rows_quarantined, r.rows_in, 1)]
    # typed columns, JSON where the warehouse holds JSON or lists
    types = dict(
        postgres.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'customer_churn_processed'",
            db="exported",
        )
    )
    assert types["last_activity_date"] == "date" and types["total_value"] == "double precision"
    assert types["value_tier"] in ("smallint", "integer", "bigint") and types["extras"] == "jsonb"
    reasons = postgres.sql(
        "SELECT source_row, reasons, raw->>'customer_id' FROM quarantine_customer_churn "
        "WHERE reasons ? 'invalid_number' ORDER BY source_row LIMIT 1",
        db="exported",
    )
    assert reasons and reasons[0][1] == ["invalid_number"]
    # the same run again adds nothing
    again = tk.export(r.run_id, out, warehouse=workdir / "w.duckdb")
    assert again.already and again.total == 0
    assert postgres.sql(counts, db="exported") == [(r.rows_out, r.rows_quarantined, r.rows_in, 1)]
    # another run over the same rows: its processed rows go in, the bronze records do not again
    rerun = _run(workdir, crm, SAMPLE_DATE, table="customers")
    assert rerun.input_sha256 == r.input_sha256
    second = tk.export(rerun.run_id, out, warehouse=workdir / "w.duckdb")
    assert second.rows["bronze_customer_churn"] == 0
    assert second.rows["customer_churn_processed"] == rerun.rows_out
    assert postgres.sql(counts, db="exported") == [
        (2 * r.rows_out, 2 * r.rows_quarantined, r.rows_in, 2)
    ]
    # a table that refuses the rows half way: the whole export is rolled back
    broken = postgres.new_database("broken")
    postgres.sql("CREATE TABLE bronze_customer_churn (file_sha256 int)", db="broken")
    with pytest.raises(tk.ExportError, match="nothing was written") as err:
        tk.export(r.run_id, broken, warehouse=workdir / "w.duckdb")
    assert PASSWORD not in str(err.value)
    tables = postgres.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        db="broken",
    )
    assert tables == [("bronze_customer_churn",)]  # no tracer_runs, no processed rows


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("missing database", 'database "nowhere" does not exist'),
        ("wrong password", 'password authentication failed for user "postgres"'),
        ("server down", "Connection refused"),
    ],
)
def test_export_failures_are_one_line_without_the_password(postgres, crm, workdir, target, says):
    r = _run(workdir, crm, query="SELECT * FROM small ORDER BY customer_id")
    url = {
        "missing database": postgres.url("nowhere"),
        "wrong password": postgres.url("crm", password="not-" + PASSWORD),
        "server down": f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/crm",
    }[target]
    cmd = [venv_bin("tracer"), "export", r.run_id, url, "--warehouse", str(workdir / "w.duckdb")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert says in done.stderr and "nothing was written" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_no_password_in_any_output_of_a_notebook_run(postgres, crm, workdir):
    """The CLI's default path (Papermill): the password reaches the kernel, never a file."""
    cmd = [venv_bin("tracer"), "run", crm, "--table", "customers", "-b", "customer_churn"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=False)
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    out = postgres.new_database("from_cli")
    exported = subprocess.run(
        [venv_bin("tracer"), "export", done.stdout.split()[0], out],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "postgres:***@" in exported.stdout
    wrong = subprocess.run(
        [venv_bin("tracer"), "run", postgres.url("crm", password="x" + PASSWORD), "--table", "customers", "-b", "customer_churn", "--no-notebook"],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr
    checked = subprocess.run(
        [venv_bin("tracer"), "validate", crm, "--query", "SELECT * FROM small ORDER BY 1", "-b", "customer_churn"],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    assert (
        checked.returncode == 0
        and f"postgres:***@127.0.0.1:{postgres.port}/crm: 4 rows in" in checked.stdout
    )
    printed = (
        done.stdout + done.stderr + exported.stdout + exported.stderr + wrong.stdout + wrong.stderr
    )
    printed += checked.stdout + checked.stderr
    assert PASSWORD not in printed
    leaks = [p for p in workdir.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert leaks == []  # warehouse, run records, reports, executed notebook, logs


def test_a_two_million_row_table_streams_in_bounded_memory(postgres, workdir):
    url = postgres.new_database("big")
    postgres.sql(
        "CREATE TABLE events AS SELECT g AS id, 'customer-' || g AS name, g * 0.25 AS amount, "
        "DATE '2024-01-01' + (g % 365) AS day, repeat(md5(g::text), 4) AS note "
        "FROM generate_series(1, 2000000) g",
        db="big",
    )
    postgres.sql("ALTER TABLE events ADD PRIMARY KEY (id)", db="big")
    # the peak of the child's own heap (RssAnon, sampled every 10 ms): ru_maxrss would carry
    # pytest's peak across fork and exec, and VmHWM counts the pages of files polars maps
    script = (
        "import re, sys, threading, time, polars as pl, tracer_kit as tk\n"
        "peak = [0]\n"
        "def watch():\n"
        "    while True:\n"
        "        kb = re.search(r'RssAnon:\\s+(\\d+) kB', open('/proc/self/status').read())\n"
        "        peak[0] = max(peak[0], int(kb.group(1)))\n"
        "        time.sleep(0.01)\n"
        "threading.Thread(target=watch, daemon=True).start()\n"
        "ing = tk.read_table(sys.argv[1], table='events', staging_dir=sys.argv[2])\n"
        "rows = ing.frame.select(pl.len()).collect(engine='streaming').item()\n"
        "time.sleep(0.05)\n"
        "read_peak = peak[0] // 1024\n"
        "ids = ing.frame.select(pl.col('id').cast(pl.Int64).sum()).collect(engine='streaming').item()\n"
        "print(rows, ids, read_peak)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, url, str(workdir / "staging")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows, id_sum, peak_mb = (int(v) for v in done.stdout.split())
    assert (rows, id_sum) == (2_000_000, 2_000_000 * 2_000_001 // 2)
    # the rows' text is 347 MB (the staged copy); reading and counting them stays far below
    # (measured: 78 MB, 26 MB of it the imports): they never sit in memory whole
    staged = (workdir / "staging" / "postgresql-rows.csv").stat().st_size
    assert staged > 340e6
    assert peak_mb < 200, f"peak {peak_mb} MB"


def test_the_workbench_runs_a_database_table_with_a_typed_password(postgres, crm, workdir):
    from tracer_kit.widgets import workbench

    bench = workbench("data")
    bench.source_kind.value = "Database"
    assert bench.db_url in bench.source_box.children[0].children  # the database inputs show
    bench.db_url.value = postgres.url("crm", password=None)
    assert "Give a table or a query" in bench.compatibility.value
    bench.db_table.value = "customers"
    bench.db_password.value = PASSWORD
    bench.reference_date.value = SAMPLE_DATE
    assert (
        bench.check()
        and "checked against the blueprint when the run starts" in bench.compatibility.value
    )
    result = bench.start()
    assert bench.error.value == "" and result.state == "COMPLETED"
    assert (result.rows_in, result.dataset) == (10_000, "customers")
    assert result.input_path == f"postgresql://postgres:***@127.0.0.1:{postgres.port}/crm"
    assert bench.progress.bar_style == "success" and "10,000" in bench.summary.value
    shown = [
        getattr(c, "value", "")
        for c in (bench.summary, bench.issues, bench.sample, bench.report_link)
    ]
    assert not any(PASSWORD in str(v) for v in shown)
    bench.db_password.value = "wrong"
    bench.start()
    assert (
        "password authentication failed" in bench.error.value and "wrong" not in bench.error.value
    )


def test_an_api_runs_bronze_goes_to_postgresql_with_each_records_page(postgres, workdir):
    from .api_server import running_api

    records = [
        {"customer_id": f"C{i}", "last_activity_date": "2024-06-01",
         "account_created_date": "2024-01-01", "total_value": i}
        for i in range(1, 7)
    ]  # fmt: skip
    with running_api(records) as api:
        r = _run(workdir, api.url("/pages"), api={"paginate": "page", "records_path": "items"})
    out = postgres.new_database("from_api")
    assert (
        tk.export(r.run_id, out, warehouse=workdir / "w.duckdb").rows["bronze_customer_churn"] == 6
    )
    rows = postgres.sql(
        "SELECT source_row, source_position->>'url', (source_position->>'status')::int "
        "FROM bronze_customer_churn ORDER BY source_row",
        db="from_api",
    )
    # four records a page: rows 1-4 from page 1, rows 5-6 from page 2
    page = api.url("/pages?page={}")
    assert rows == [(n, page.format(1 if n <= 4 else 2), 200) for n in range(1, 7)]


def test_a_url_without_password_uses_pgpassword(postgres, crm, monkeypatch):
    monkeypatch.delenv("TRACER_DB_URL", raising=False)
    url = postgres.url("crm", password=None)
    monkeypatch.setenv("PGPASSWORD", "not-" + PASSWORD)
    with pytest.raises(tk.IngestError, match="password authentication failed"):
        tk.read_table(url, table="small")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # libpq's own variable, read by the driver
    assert tk.read_table(url, table="small").info.row_count == 4
