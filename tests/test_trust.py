"""Trust: credentials stay with their origin, read-only means read-only, housekeeping keeps the
last good run, limits hold while reading, secrets are hidden, backups come back.

Each test names the item of the trust contract (docs/contracts.md, "Trust") it proves.
"""

from __future__ import annotations

import re

import polars as pl
import pytest

import tracer_kit as tk

from .api_server import TOKEN, running_api
from .test_api_source import RECORDS


@pytest.fixture(scope="module")
def two_origins():
    """The same API twice: on 127.0.0.1 (the user's origin) and on 127.0.0.2 (another one)."""
    with running_api(RECORDS) as home, running_api(RECORDS, host="127.0.0.2") as away:
        yield home, away


def _token_env(monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    return {"token_env": "CRM_TOKEN", "records_path": "data", "backoff": 0.05}


def test_a_redirect_to_another_origin_is_followed_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    target = away.url("/auth/customers")
    with pytest.raises(tk.IngestError, match="HTTP 401"):  # away wants the token: never given
        tk.read_table(
            home.url(f"/away-redirect?to={target}"), api=tk.ApiOptions(**_token_env(monkeypatch))
        )
    assert home.hits("/away-redirect")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/auth/customers")] == [None]


def test_a_redirect_on_the_same_origin_keeps_the_token(two_origins, monkeypatch):
    home, _ = two_origins
    ing = tk.read_table(
        home.url(f"/away-redirect?to={home.url('/auth/customers')}"),
        api=tk.ApiOptions(**_token_env(monkeypatch)),
    )
    assert ing.info.row_count == 10
    assert home.hits("/auth/customers")[-1]["auth"] == f"Bearer {TOKEN}"


def test_a_next_link_to_another_origin_goes_without_the_token(two_origins, monkeypatch):
    home, away = two_origins
    before = len(away.hits("/cursor"))
    ing = tk.read_table(
        home.url(f"/away-link?to={away.url('/cursor?cursor=3')}"),
        api=tk.ApiOptions(paginate="next-link", **_token_env(monkeypatch)),
    )
    assert ing.frame.collect()["customer_id"].to_list()[:4] == ["C001", "C002", "C003", "C004"]
    assert home.hits("/away-link")[-1]["auth"] == f"Bearer {TOKEN}"
    assert [h["auth"] for h in away.hits("/cursor")[before:]] == [None]


def test_same_origin_refuses_a_redirect_or_link_elsewhere_in_one_line(two_origins, monkeypatch):
    home, away = two_origins
    opts = tk.ApiOptions(same_origin=True, **_token_env(monkeypatch))
    before = len(away.log)
    with pytest.raises(tk.IngestError, match="redirects to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-redirect?to={away.url('/cursor')}"), api=opts)
    linked = tk.ApiOptions(same_origin=True, paginate="next-link", **_token_env(monkeypatch))
    with pytest.raises(tk.IngestError, match="links to another origin .*--same-origin"):
        tk.read_table(home.url(f"/away-link?to={away.url('/cursor')}"), api=linked)
    assert len(away.log) == before  # nothing reached the other origin


# --------------------------------------------------------------------------- a project with one run


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with one completed customer_churn run (no model: quick)."""
    from tracer_kit.datasets import write_samples

    root = tmp_path_factory.mktemp("project")
    sample = next(p for p in write_samples(root / "samples") if p.name == "customers.csv")
    result = tk.run_pipeline(
        sample,
        "customer_churn",
        config={"model": {"enabled": False}},
        warehouse=root / "data" / "warehouse.duckdb",
        output_dir=root / "reports",
        processed_dir=root / "data" / "processed",
        return_frame=False,
    )
    assert result.state == "COMPLETED"
    return root, result


def _tracer(root, *args):
    import subprocess

    from .conftest import venv_bin

    return subprocess.run(
        [venv_bin("tracer"), *args], cwd=root, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("COPY runs TO 'x.csv'", "COPY statements are not allowed"),
        ("EXPORT DATABASE 'dump'", "EXPORT statements are not allowed"),
        ("INSTALL httpfs", "statements are not allowed"),
        ("ATTACH 'other.duckdb' AS o", "ATTACH statements are not allowed"),
        ("SET enable_external_access = true", "SET statements are not allowed"),
        ("SELECT 1; SELECT 2", "give one SQL statement (got 2)"),
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_text('samples/customers.csv')", "file system operations are disabled"),
    ],
)
def test_a_query_only_reads_the_warehouse(project, sql, says):
    root, _ = project
    with pytest.raises(tk.TracerError, match=re.escape(says)):
        tk.query(sql, warehouse=root / "data" / "warehouse.duckdb")
    assert not (root / "x.csv").exists() and not (root / "dump").exists()


def test_a_query_still_reads_the_runs_files_through_the_views(project):
    root, result = project
    rows = tk.query(
        "SELECT count(*) AS n FROM customer_churn_processed",
        warehouse=root / "data/warehouse.duckdb",
    )
    assert rows["n"][0] == result.rows_out == 9750  # the sample's 10,000 rows less 250 quarantined


def test_query_out_never_overwrites_the_warehouse_a_runs_files_or_a_file(project):
    root, result = project
    warehouse = root / "data" / "warehouse.duckdb"
    before = warehouse.read_bytes()
    processed = result.outputs.parquet
    for target, says in [
        ("data/warehouse.duckdb", "is the warehouse itself"),
        (str(processed), "holds tracer's run files"),
        (f"reports/{result.run_id}/extra.csv", "holds tracer's run files"),
    ]:
        done = _tracer(root, "query", "SELECT 1 AS one", "--out", target, "--force")
        assert done.returncode == 1 and says in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert warehouse.read_bytes() == before
    (root / "mine.csv").write_text("precious\n")
    done = _tracer(root, "query", "SELECT 1 AS one", "--out", "mine.csv")
    assert done.returncode == 1 and "mine.csv exists; add --force" in done.stderr
    assert (root / "mine.csv").read_text() == "precious\n"
    done = _tracer(root, "query", "SELECT 1 AS one", "--out", "mine.csv", "--force")
    assert done.returncode == 0 and (root / "mine.csv").read_text() == "one\n1\n"


FORMULAS = "SELECT '=HYPERLINK(\"http://x\")' AS a, e'\\t=1+1' AS b, '+A1*2' AS c, '@SUM(A1)' AS d, -5 AS n, '-12.5' AS t, 'plain' AS p"


def test_csv_and_excel_cells_never_run_as_formulas(project):
    root, _ = project
    done = _tracer(root, "query", FORMULAS, "--out", "cells.csv")
    assert done.returncode == 0, done.stderr
    lines = (root / "cells.csv").read_text().splitlines()
    cells = pl.read_csv(root / "cells.csv", infer_schema=False).row(0)
    assert cells == (
        '\'=HYPERLINK("http://x")',
        "'\t=1+1",
        "'+A1*2",
        "'@SUM(A1)",
        "-5",
        "-12.5",
        "plain",
    )
    raw = _tracer(root, "query", FORMULAS, "--out", "raw.csv", "--raw-cells")
    assert raw.returncode == 0 and (root / "raw.csv").read_text().splitlines()[1].startswith(
        '"=HYPERLINK'
    )
    done = _tracer(root, "query", FORMULAS, "--out", "cells.xlsx")
    assert done.returncode == 0, done.stderr
    import openpyxl

    sheet = openpyxl.load_workbook(root / "cells.xlsx").active
    values = [c.value for c in sheet[2]]
    assert values == [
        '\'=HYPERLINK("http://x")',
        "'\t=1+1",
        "'+A1*2",
        "'@SUM(A1)",
        -5,
        "-12.5",
        "plain",
    ]
    assert all(c.data_type != "f" for c in sheet[2])  # no cell is a formula
    stdout = _tracer(root, "query", FORMULAS, "--output-format", "csv")
    assert stdout.stdout.splitlines()[1] == lines[1]
