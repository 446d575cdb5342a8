"""The workbench driven from pytest: set widget values, press buttons, read what a person would see."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from tracer_kit.widgets import find_inputs, sanitise_filename, workbench

from .conftest import CHURN_HEADER, write_csv


@pytest.fixture
def bench(workdir, sample_csv):
    (workdir / "data" / "samples").mkdir(parents=True)
    shutil.copy(sample_csv, workdir / "data" / "samples" / "customers.csv")
    return workbench("data")


def test_file_picker_lists_readable_inputs(bench, workdir):
    assert bench.file.options == (("samples/customers.csv", "data/samples/customers.csv"),)
    (workdir / "data" / "processed").mkdir()
    (workdir / "data" / "processed" / "x.parquet").write_bytes(b"PAR1")
    (workdir / "data" / "notes.md").write_text("no")
    assert [p.name for p in find_inputs(workdir / "data")] == ["customers.csv"]


def test_blueprint_shows_fields_and_compatibility(bench):
    bench.blueprint.value = "customer_churn"
    assert "customer_id" in bench.fields.value and "plan_type" in bench.fields.value
    assert "✓ compatible" in bench.compatibility.value
    bench.blueprint.value = "price_optimization"
    assert "✗" in bench.compatibility.value
    assert "needs fields missing from the file: &#x27;product_id&#x27;" in bench.compatibility.value


def test_upload_is_saved_with_a_sanitised_name_and_mapped(bench, workdir):
    content = b"CustomerID,seen,Account Created Date,Total Value\nA1,2025-06-01,2024-01-01,10\n"
    bench.upload.value = (
        {
            "name": "../../evil name!.csv",
            "content": memoryview(content),
            "size": len(content),
            "type": "text/csv",
            "last_modified": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        },
    )
    saved = workdir / "data" / "uploads" / "evil_name_.csv"
    assert saved.read_bytes() == content
    assert bench.file.value == "data/uploads/evil_name_.csv"
    bench.blueprint.value = "customer_churn"
    assert "✗" in bench.compatibility.value  # 'seen' is not close enough to last_activity_date
    bench.column_map.value = "seen=last_activity_date"
    assert "✓ compatible" in bench.compatibility.value
    assert "CustomerID → customer_id" in bench.compatibility.value


def test_run_button_fills_the_tabs(bench, workdir):
    bench.blueprint.value = "customer_churn"
    bench.scaling.value = "standard"
    bench.run.click()
    assert bench.error.value == ""
    assert bench.progress.value == bench.progress.max and bench.progress.bar_style == "success"
    assert "Quality score: <span class='quality-score'>99.1</span>" in bench.summary.value
    assert "uniqueness" in bench.issues.value
    assert "engagement_score" in bench.sample.value and "<img" in bench.charts.value
    assert "exp(-days_since_last_activity / 30)" in bench.features.value
    assert 'id="predictions">Predictions' in bench.predictions.value
    assert "the top 10% of customers by risk hold" in bench.predictions.value
    assert "ROC curve and calibration" in bench.predictions.value
    report = bench.result.outputs["report"]
    assert report in bench.report_link.value and (workdir / report).exists()
    assert bench.result.params["config"]["preprocess"]["scaling"] == "standard"


def test_errors_show_as_one_readable_line(bench, workdir):
    bad = write_csv(
        workdir / "data" / "bad.csv",
        CHURN_HEADER,
        [f"C{i},2025-06-01,2024-01-01,,1,1,x" for i in range(5)],
    )
    bench.refresh.click()
    bench.file.value = str(bad.relative_to(workdir))
    bench.run.click()
    assert bench.progress.bar_style == "danger"
    assert "quality gate failed" in bench.error.value
    assert "Traceback" not in bench.error.value
    (workdir / "data" / "empty.csv").write_bytes(b"")
    bench.refresh.click()
    bench.file.value = "data/empty.csv"
    assert "is empty (0 bytes)" in bench.compatibility.value
    bench.run.click()
    assert "is empty (0 bytes)" in bench.error.value


def test_sanitise_filename():
    assert sanitise_filename("../a b/c?.CSV") == "c_.CSV"
    assert sanitise_filename("...") == "upload"
    assert sanitise_filename("C:\\Users\\x\\data.xlsx") == "data.xlsx"


def test_file_picker_never_offers_tracer_outputs(bench, workdir):
    bench.blueprint.value = "customer_churn"
    bench.run.click()  # leaves bronze, processed, staging-free outputs and a warehouse
    assert list((workdir / "data" / "bronze").rglob("*.parquet"))
    assert list((workdir / "data" / "processed").rglob("*.parquet"))
    (workdir / "data" / "staging" / "x").mkdir(parents=True)
    (workdir / "data" / "staging" / "x" / "t.parquet").write_bytes(b"PAR1")
    (workdir / "data" / "uploads").mkdir()
    (workdir / "data" / "uploads" / "mine.csv").write_text("a\n1\n")
    bench.refresh.click()
    offered = [label for label, _ in bench.file.options]
    assert offered == ["samples/customers.csv", "uploads/mine.csv"]
    fresh = workbench("data")  # a new workbench auto-selects only a user's input
    assert fresh.file.value == "data/samples/customers.csv"


def test_quarantine_tab_lists_rows_with_reasons_and_lines(bench):
    bench.blueprint.value = "customer_churn"
    bench.run.click()
    html = bench.quarantine.value
    assert "<b class='quarantine-count'>250</b> row(s) quarantined; the first 100 of them" in html
    assert html.count("<tr>") == 101  # a header and 100 rows
    assert "duplicate_id" in html and "source_line" in html
    assert "No issues" not in bench.issues.value


def test_quarantine_tab_filters_by_rule_and_saves_the_rows(bench, workdir):
    import polars as pl

    bench.blueprint.value = "customer_churn"
    bench.run.click()
    labels = dict(bench.rule_filter.options)
    duplicate = next(label for label in labels if label.startswith("duplicate_id on customer_id"))
    n = int(duplicate.split("(")[1].split()[0].replace(",", ""))
    bench.rule_filter.value = labels[duplicate]
    html = bench.quarantine.value
    assert html.count("<tr>") == 1 + min(n, 100) and "duplicate_id on customer_id" in html
    bench.save_path.value = "dupes.csv"
    bench.save.click()
    assert "wrote" in bench.save_status.value
    saved = pl.read_csv(workdir / "dupes.csv", infer_schema=False)
    assert saved.height == n and saved["failed"].str.contains("duplicate_id").all()
    bench.save.click()  # never over a file without being asked
    assert "exists" in bench.save_status.value


def test_issues_tab_speaks_of_quarantined_rows_when_no_issue(workdir):
    from tracer_kit.widgets import issues_html

    assert "3 row(s) were quarantined" in issues_html([], 3)
    assert issues_html([], 0) == "No issues."


def test_report_opens_inside_the_workbench(bench):
    bench.blueprint.value = "customer_churn"
    bench.run.click()
    assert not bench.open_report.disabled
    bench.open_report.click()
    assert "<iframe class='tracer-report'" in bench.report_view.value
    assert "id=&quot;quality-score&quot;" in bench.report_view.value


def test_personal_fields_show_no_values_in_the_workbench(bench):
    import polars as pl

    ids = pl.read_csv("data/samples/customers.csv", infer_schema=False)["customer_id"]
    bench.blueprint.value = "customer_churn"
    bench.pii.value = "customer_id"
    assert bench.config()["pii"] == ["customer_id"]
    bench.run.click()
    assert bench.error.value == ""
    assert "engagement_score" in bench.sample.value and "customer_id" not in bench.sample.value
    assert "(hidden: personal)" in bench.quarantine.value
    shown = bench.sample.value + bench.quarantine.value + bench.issues.value
    assert not [i for i in ids if i and (f">{i}<" in shown or f'"{i}"' in shown)]
