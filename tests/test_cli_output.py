"""CLI listings for people and scripts: nothing cut at any width, JSON and CSV, datasets compared apart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.warehouse import dataset_name

from .conftest import venv_bin

pytestmark = pytest.mark.slow


def _tracer(*args, cwd, columns="40"):
    env = {**os.environ, "COLUMNS": columns}
    return subprocess.run(
        [venv_bin("tracer"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def two_datasets(workdir, sample_csv):
    from tracer_kit._resources import resource_path

    shutil.copy(sample_csv, workdir / "retail_customers_2024-06-01.csv")
    shutil.copy(resource_path("tracer_kit/samples/customers_tiny.csv"), workdir / "telecom.csv")
    shutil.copy(
        resource_path("tracer_kit/samples/customers_tiny.csv"), workdir / "telecom_20240701.csv"
    )
    runs = [
        tk.run_pipeline(workdir / name, "customer_churn", return_frame=False)
        for name in ("retail_customers_2024-06-01.csv", "telecom.csv", "telecom_20240701.csv")
    ]
    return workdir, runs


@pytest.mark.parametrize(
    ("path", "dataset"),
    [
        ("customers_2024-06-01.csv", "customers"),
        ("customers_2024-07-01.csv", "customers"),
        ("data/customers_20240701.csv.gz", "customers"),
        ("sales-2024-06.xlsx", "sales"),
        ("orders_2024-06-01T120000.ndjson", "orders"),
        ("telecom churn.csv", "telecom churn"),
        ("2024-06-01.csv", "2024-06-01"),
    ],
)
def test_dataset_is_the_stem_without_a_trailing_date(path, dataset):
    assert dataset_name(path) == dataset


def test_listings_are_never_cut_at_40_columns(two_datasets):
    root, runs = two_datasets
    listing = _tracer("runs", cwd=root)
    assert listing.returncode == 0, listing.stderr
    for r in runs:
        assert r.run_id in listing.stdout
    assert "retail_customers_2024-06-01.csv" in listing.stdout and "…" not in listing.stdout
    blueprints = _tracer("blueprints", cwd=root)
    for name in ("revenue_projection", "last_activity_date", "price_index_catalogue"):
        assert name in blueprints.stdout
    assert "…" not in blueprints.stdout


def test_validate_issues_are_never_cut_and_speak_json_and_csv(workdir, sample_csv):
    table = _tracer("validate", str(sample_csv), "-b", "customer_churn", cwd=workdir)
    assert table.returncode == 0, table.stderr
    issues = tk.validate(sample_csv, "customer_churn").issues
    assert issues and "…" not in table.stdout
    for issue in issues:  # every message whole, at 40 columns
        assert issue.message in table.stdout
    as_json = _tracer(
        "validate", str(sample_csv), "-b", "customer_churn", "--output-format", "json", cwd=workdir
    )
    data = json.loads(as_json.stdout)
    assert data["passed"] is True and data["rows_in"] == 10_000
    assert [i["check"] for i in data["issues"]] == [i.check for i in issues]
    as_csv = _tracer(
        "validate", str(sample_csv), "-b", "customer_churn", "--output-format", "csv", cwd=workdir
    )
    rows = pl.read_csv(as_csv.stdout.encode())
    assert rows.height == len(issues) and rows["message"].to_list() == [i.message for i in issues]


def test_listings_as_json_and_csv(two_datasets):
    root, runs = two_datasets
    rows = json.loads(_tracer("runs", "--output-format", "json", cwd=root).stdout)
    assert [r["dataset"] for r in rows] == ["telecom", "telecom", "retail_customers"]
    csv = _tracer("runs", "--output-format", "csv", cwd=root).stdout
    assert not csv.endswith("\n\n") and csv.endswith("\n")
    frame = pl.read_csv(csv.encode())
    assert frame.height == 3 and frame["rows_in"].to_list() == [200, 200, 10000]
    bps = json.loads(_tracer("blueprints", "--output-format", "json", cwd=root).stdout)
    assert [b["blueprint"] for b in bps] == [
        "customer_churn",
        "price_optimization",
        "revenue_projection",
    ]
    bad = _tracer("runs", "--output-format", "xml", cwd=root)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1


def test_drift_and_history_compare_runs_of_the_same_dataset(two_datasets):
    root, (retail, telecom, telecom_later) = two_datasets
    report = (root / "reports" / telecom_later.run_id / "report.html").read_text()
    assert f"against run {telecom.run_id}" in report or telecom.run_id in report
    assert retail.run_id not in report
    first = (root / "reports" / telecom.run_id / "report.html").read_text()
    assert retail.run_id not in first  # the retail file is another dataset: no drift against it
    latest = tk.query(
        "SELECT dataset, count(*) AS n, min(run_id) AS run FROM customer_churn_latest_by_dataset "
        "GROUP BY dataset ORDER BY dataset"
    )
    assert latest.rows() == [
        ("retail_customers", 9750, retail.run_id),
        ("telecom", 195, telecom_later.run_id),
    ]


def test_dataset_flag_overrides_the_default(workdir, sample_csv):
    from tracer_kit._resources import resource_path

    shutil.copy(resource_path("tracer_kit/samples/customers_tiny.csv"), workdir / "a.csv")
    done = _tracer(
        "run", "a.csv", "-b", "customer_churn", "--no-notebook", "--dataset", "crm", cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    assert tk.query("SELECT dataset FROM runs")["dataset"].to_list() == ["crm"]


def test_batch_names_every_file_in_full_and_speaks_json(workdir):
    from tracer_kit._resources import resource_path

    folder = workdir / "data" / "incoming_customer_exports"
    folder.mkdir(parents=True)
    for name in ("customers_north_region.csv", "customers_south_region.csv"):
        shutil.copy(resource_path("tracer_kit/samples/customers_tiny.csv"), folder / name)
    table = _tracer(
        "batch", "data/incoming_customer_exports/*.csv", "-b", "customer_churn", cwd=workdir
    )
    assert table.returncode == 0, table.stderr
    for name in ("customers_north_region.csv", "customers_south_region.csv"):
        assert f"data/incoming_customer_exports/{name}" in table.stdout
    assert "…" not in table.stdout
    rows = json.loads(
        _tracer(
            "batch", "data/incoming_customer_exports/*north*.csv", "-b", "customer_churn",
            "--output-format", "json", cwd=workdir,
        ).stdout
    )  # fmt: skip
    assert [(r["file"], r["state"], r["rows_in"]) for r in rows] == [
        ("data/incoming_customer_exports/customers_north_region.csv", "COMPLETED", 200)
    ]


def test_runs_show_lists_only_outputs_that_exist(workdir):
    rows = [f"C{i},yesterday,someday,abc,x,y,basic" for i in range(5)]
    from .conftest import CHURN_HEADER

    (workdir / "bad.csv").write_text("\n".join([CHURN_HEADER, *rows]) + "\n")
    with pytest.raises(tk.QualityGateError) as caught:
        tk.run_pipeline("bad.csv", "customer_churn")
    run_id = caught.value.result.run_id
    shown = _tracer("runs", "show", run_id, cwd=workdir, columns="200")
    line = next(x for x in shown.stdout.splitlines() if x.startswith("outputs"))
    outputs = json.loads(line.split(None, 1)[1])
    assert "report" in outputs and "log" in outputs
    for never_written in ("parquet", "model", "preprocessor", "preprocessor_json", "staging"):
        assert never_written not in outputs


def test_a_command_line_builds_only_its_command_and_still_reads_as_the_whole_app(workdir):
    """``tracer NAME`` builds the click command of NAME alone (not all of them); its help,
    a group's subcommands, the listing, a typo's suggestion and the server's commands read as
    they do from the whole app.
    """
    one = _tracer("validate", "--help", cwd=workdir, columns="120")
    assert one.returncode == 0 and "Usage: tracer validate [OPTIONS] {input}" in one.stdout
    group = _tracer("runs", "show", "--help", cwd=workdir, columns="120")
    assert group.returncode == 0 and "Usage: tracer runs show" in group.stdout
    listing = _tracer("--help", cwd=workdir, columns="120")
    assert all(f" {name} " in listing.stdout for name in ("validate", "runs", "serve", "schedule"))
    typo = _tracer("validat", "x.csv", cwd=workdir, columns="120")
    assert typo.returncode == 2 and "Did you mean 'validate'?" in typo.stderr
    serve = _tracer("serve", "--help", cwd=workdir, columns="120")
    assert serve.returncode == 0 and "Usage: tracer serve" in serve.stdout
    missing = _tracer("validate", "x.csv", cwd=workdir, columns="120")
    assert missing.returncode == 2 and "Missing option '--blueprint'" in missing.stderr
