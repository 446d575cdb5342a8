"""HTTP JSON API sources against a local server (tests/api_server.py): pages, retries, limits.

Ten churn records are served four to a page (three pages) in each pagination style; the
server also answers 429 with Retry-After, fails with 500s, stays silent past the timeout
and sends broken JSON.
"""

from __future__ import annotations

import subprocess
import time

import polars as pl
import pytest

import tracer_kit as tk

from .api_server import PER_PAGE, TOKEN, running_api
from .conftest import venv_bin

RECORDS = [
    {
        "customer_id": f"C{i:03d}",
        "last_activity_date": f"2024-06-{i:02d}",
        "account_created_date": "2023-01-01",
        "total_value": 10.5 * i,
        "support_tickets": i % 3,
        "feature_usage_count": 2 * i,
        "plan_type": "basic" if i % 2 else "premium",
    }
    for i in range(1, 11)
]
IDS = [r["customer_id"] for r in RECORDS]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    csv = tmp_path_factory.mktemp("files") / "customers.csv"
    pl.DataFrame(RECORDS).write_csv(csv)
    with running_api(RECORDS, files={"customers.csv": csv}) as server:
        yield server


FAST = {"backoff": 0.05}  # retries in tests wait 50 ms, 100 ms... unless Retry-After says


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("/cursor", {"paginate": "cursor", "records_path": "data"}),
        ("/pages", {"paginate": "page", "records_path": "items"}),
        ("/links", {"paginate": "next-link", "records_path": "results"}),
    ],
)
def test_every_pagination_style_reads_every_record_in_order(api, path, options):
    ing = tk.read_table(api.url(path), api=tk.ApiOptions(**options))
    rows = ing.frame.collect()
    assert rows["customer_id"].to_list() == IDS
    assert rows["source_row"].to_list() == list(range(1, 11))
    assert rows["source_line"].null_count() == 10
    assert rows["total_value"][0] == "10.5"  # a JSON number keeps its text form
    # 10 records, 4 a page: pages of 4, 4 and 2 (the page style reads one empty page more)
    counts = [p["rows"] for p in ing.info.pages]
    assert counts == ([4, 4, 2, 0] if options["paginate"] == "page" else [4, 4, 2])
    assert [p["first_row"] for p in ing.info.pages][:3] == [1, 5, 9]
    assert all(p["status"] == 200 for p in ing.info.pages)
    again = tk.read_table(api.url(path), api=tk.ApiOptions(**options))
    assert again.info.sha256 == ing.info.sha256  # the same records: the same fingerprint


def test_a_blueprint_runs_on_an_api_and_records_its_pages(api, workdir):
    r = tk.run_pipeline(
        api.url("/cursor"),
        "customer_churn",
        config={"api": {"paginate": "cursor", "records_path": "data"}},
        run_date="2024-07-01",
        report=False,
    )
    assert (r.rows_in, r.rows_valid, r.rows_quarantined) == (10, 10, 0)
    assert r.input_path == api.url("/cursor") and r.dataset == "cursor"
    assert r.frame["customer_id"].to_list() == IDS
    # the reference date is the latest activity, 2024-06-10: C001 has 2023-01-01 -> 2024-06-10
    # = 365 + 31 + 29 + 31 + 30 + 31 + 9 = 526 tenure days, and 10.5 / 526 a day
    first = r.frame.row(0, named=True)
    assert first["account_tenure_days"] == 526  # 2023-01-01 -> 2024-06-10
    assert first["daily_value_rate"] == pytest.approx(10.5 / 526)
    pages = r.params["pages"]
    assert [(p["first_row"], p["rows"]) for p in pages] == [(1, 4), (5, 4), (9, 2)]
    assert pages[1]["url"] == api.url("/cursor?cursor=2")
    # bronze keeps each record with its page as its position
    bronze = tk.query(
        "SELECT source_row, source_position->>'url' AS url, source_position->>'status' AS status, "
        "source_position->>'requested_at' AS at, raw->>'customer_id' AS id FROM bronze_customer_churn "
        "ORDER BY source_row"
    )
    assert bronze.height == 10 and bronze["id"].to_list() == IDS
    assert bronze["url"].to_list() == [pages[(i - 1) // PER_PAGE]["url"] for i in range(1, 11)]
    assert set(bronze["status"]) == {"200"} and bronze["at"][4] == pages[1]["requested_at"]
    report = tk.quality_report(r.run_id).read_text()
    assert "<th>Pages</th><td>3 page(s), 10 records; first requested" in report


def test_429_waits_as_retry_after_says_and_the_rate_limit_spaces_requests(api):
    start = len(api.log)
    t = time.monotonic()
    ing = tk.read_table(
        api.url("/limited"), api=tk.ApiOptions(paginate="page", rate_limit=20, **FAST)
    )
    elapsed = time.monotonic() - t
    assert ing.frame.collect()["customer_id"].to_list() == IDS
    hits = api.log[start:]
    # four pages (the fourth empty), each refused once with Retry-After: 1, then served
    assert len(hits) == 8
    waits = [b["at"] - a["at"] for a, b in zip(hits[::2], hits[1::2], strict=True)]
    assert all(w >= 0.99 for w in waits), waits
    assert elapsed >= 4
    gaps = [b["at"] - a["at"] for a, b in zip(hits, hits[1:], strict=False)]
    assert min(gaps) >= 0.05 - 0.005  # never more than 20 requests a second


def test_server_errors_are_retried_then_given_up_on_in_one_line(api):
    start = len(api.log)
    ing = tk.read_table(api.url("/flaky"), api=tk.ApiOptions(**FAST))
    assert ing.info.row_count == 10
    assert len(api.hits("/flaky")) == 3  # 500, 500, 200
    with pytest.raises(tk.IngestError) as err:
        tk.read_table(api.url("/down"), api=tk.ApiOptions(retries=2, **FAST))
    assert (
        str(err.value)
        == f"{api.url('/down')}: gave up after 3 tries (HTTP 503 Service Unavailable)"
    )
    assert len(api.log) - start == 3 + 3


@pytest.mark.parametrize(
    ("path", "options", "says"),
    [
        ("/slow", {"timeout": 0.3, "retries": 1}, "gave up after 2 tries (no answer within 0.3 s)"),
        ("/broken", {}, "page 1 is not JSON (Expecting"),
        ("/missing", {}, "HTTP 404 Not Found"),
        (
            "/cursor",
            {"records_path": "rows"},
            "--records-path rows is not a list of records here (the page has: data, meta)",
        ),
        ("/auth/customers", {}, "HTTP 401 Unauthorized"),
    ],
)
def test_bad_answers_are_one_line_naming_the_url(api, path, options, says):
    with pytest.raises(tk.IngestError) as err:
        tk.read_table(api.url(path), api=tk.ApiOptions(**FAST, **options))
    assert str(err.value).startswith(api.url(path)) and says in str(err.value)
    assert "\n" not in str(err.value)


def test_max_pages_stops_and_says_there_were_more(api):
    ing = tk.read_table(api.url("/cursor"), api=tk.ApiOptions(paginate="cursor", max_pages=2))
    assert ing.info.row_count == 2 * PER_PAGE
    assert any("stopped after --max-pages 2" in w for w in ing.info.warnings)


def test_a_file_url_is_downloaded_and_read_as_that_file(api, workdir):
    ing = tk.read_table(api.url("/files/customers.csv"))
    assert ing.info.format == "csv" and ing.info.row_count == 10
    assert ing.frame.collect()["customer_id"].to_list() == IDS
    pl.DataFrame(RECORDS).write_csv(workdir / "local.csv")
    assert ing.info.sha256 == tk.read_table(workdir / "local.csv").info.sha256
    with pytest.raises(tk.IngestError, match="larger than the 100 bytes allowed"):
        tk.read_table(api.url("/files/customers.csv"), max_bytes=100)


def test_cli_run_with_a_token_never_prints_it(api, workdir):
    (workdir / ".env").write_text(f"CRM_TOKEN={TOKEN}\n")
    cmd = [
        venv_bin("tracer"), "run", api.url("/auth/customers"), "-b", "customer_churn",
        "--records-path", "data", "--token-env", "CRM_TOKEN", "--rate-limit", "5",
        "--reference-date", "2024-07-01", "--no-notebook",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=False)
    assert done.returncode == 0, done.stderr
    assert "10 rows in, 10 valid" in done.stdout
    assert api.hits("/auth/customers")[-1]["auth"] == f"Bearer {TOKEN}"
    missing = subprocess.run(
        [*cmd[:7], "--token-env", "NO_SUCH_TOKEN", "--no-notebook"],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "--token-env NO_SUCH_TOKEN: the variable is not set" in missing.stderr
    leaks = [
        p
        for p in workdir.rglob("*")
        if p.is_file() and p.name != ".env" and TOKEN.encode() in p.read_bytes()
    ]
    assert leaks == [] and TOKEN not in done.stdout + done.stderr + missing.stderr


def test_the_workbench_runs_an_api_source(api, workdir):
    from tracer_kit.widgets import workbench

    bench = workbench("data")
    bench.source_kind.value = "API"
    assert bench.api_url in bench.source_box.children
    assert "Give the api's URL" in bench.compatibility.value
    bench.api_url.value = api.url("/cursor")
    bench.records_path.value = "data"
    bench.paginate.value = "cursor"
    bench.rate_limit.value = 50
    bench.reference_date.value = "2024-07-01"
    result = bench.start()
    assert bench.error.value == "" and result.state == "COMPLETED"
    assert result.rows_in == 10 and len(result.params["pages"]) == 3
    assert bench.stage.value == "done" and "10 rows in" in bench.summary.value.replace(",", "")


def test_validate_and_profile_take_the_api_options(api, workdir):
    base = [venv_bin("tracer"), "validate", api.url("/cursor"), "-b", "customer_churn"]
    args = ["--paginate", "cursor", "--records-path", "data", "--reference-date", "2024-07-01"]
    done = subprocess.run([*base, *args], capture_output=True, text=True, cwd=workdir, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{api.url('/cursor')}: 10 rows in, 10 valid, 0 quarantined" in done.stdout
    profiled = subprocess.run(
        [venv_bin("tracer"), "profile", api.url("/pages"), "--paginate", "page", "--records-path", "items"],
        capture_output=True, text=True, cwd=workdir, check=False,
    )  # fmt: skip
    assert profiled.returncode == 0, profiled.stderr
    assert "rows      10 (0 rejected)" in profiled.stdout and "customer_id" in profiled.stdout


def test_a_key_in_the_url_is_never_recorded(api, workdir):
    r = tk.run_pipeline(
        api.url("/cursor?api_key=K3y-s3cret"),
        "customer_churn",
        config={"api": {"paginate": "cursor", "records_path": "data"}},
        run_date="2024-07-01",
    )
    assert r.rows_in == 10
    assert r.input_path == api.url("/cursor?api_key=***")
    assert r.params["pages"][1]["url"] == api.url("/cursor?api_key=***&cursor=2")
    leaks = [p for p in workdir.rglob("*") if p.is_file() and b"K3y-s3cret" in p.read_bytes()]
    assert leaks == []
