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
