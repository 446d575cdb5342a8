"""The Papermill path: parameters, executed notebook, offline HTML export, errors re-raised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracer_kit as tk
from tracer_kit.notebooks import PARAMETERS, check_parameters, notebook_path

from .conftest import venv_bin

pytestmark = pytest.mark.slow


def test_notebook_declares_exactly_the_documented_parameters():
    import papermill as pm

    assert sorted(pm.inspect_notebook(str(notebook_path()))) == sorted(PARAMETERS)


def test_unknown_parameter_rejected_before_papermill_runs():
    with pytest.raises(tk.ConfigError, match="unknown notebook parameter.*'bogus'"):
        check_parameters({"input_path": "x.csv", "bogus": 1})


def test_parameters_become_json_like():
    import datetime as dt

    out = check_parameters(
        {"input_path": Path("/tmp/x.csv"), "config": {"reference_date": dt.date(2025, 1, 2)}}
    )
    assert out == {"input_path": "/tmp/x.csv", "config": {"reference_date": "2025-01-02"}}


def test_committed_notebooks_have_no_outputs():
    for path in Path(notebook_path()).parent.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path


def test_papermill_run_writes_notebook_and_offline_html(workdir, sample_csv):
    result = tk.run_notebook(sample_csv, "customer_churn")
    assert result.state == "COMPLETED"
    assert result.rows_out == 9_750
    run_dir = workdir / "reports" / result.run_id
    assert (run_dir / "blueprint.ipynb").exists()
    assert (run_dir / "kernel.log").exists()  # what the kernel process prints itself goes here
    html = (run_dir / "notebook.html").read_text()
    assert 'Quality score: <span class="quality-score">99.1</span>' in html
    assert "<script src=" not in html  # no CDN scripts: opens offline
    assert "tk.run_pipeline" not in html  # code cells are excluded
    assert "engagement_score" in html
    # one Predictions heading (the notebook's own), and the features table shows the key
    assert html.count(">Predictions<") == 1, html.count(">Predictions<")
    assert "customer_id" in html.split("The first processed rows")[1].split("Predictions")[0]
    assert "Warning" not in html.replace("warning-", "")  # no library warning block
    report = (run_dir / "report.html").read_text()
    assert 'id="quality-score">99.1<' in report
    assert result.frame.height == 9_750
    executed = json.loads((run_dir / "blueprint.ipynb").read_text())
    injected = [
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert injected and f'run_id = "{result.run_id}"' in "".join(injected[0]["source"])


def test_quality_gate_failure_reraised_from_notebook(churn_file):
    rows = [f"C{i},2025-06-01,2024-01-01,{'' if i % 3 else 5},1,1,basic" for i in range(1, 10)]
    with pytest.raises(tk.QualityGateError, match="quality gate failed") as err:
        tk.run_notebook(churn_file(rows), "customer_churn")
    assert any(i["severity"] == "critical" for i in err.value.issues)
    assert tk.query("SELECT state FROM runs")["state"].to_list() == ["FAILED"]


def test_cli_run_prints_paths_and_exit_codes(workdir, sample_csv):
    tracer = venv_bin("tracer")
    done = subprocess.run(
        [tracer, "run", str(sample_csv), "--blueprint", "customer_churn"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "quality report:" in done.stdout and "notebook (HTML):" in done.stdout
    report = next(
        line.split()[-1] for line in done.stdout.splitlines() if line.startswith("quality report:")
    )
    assert Path(report).exists()

    missing = subprocess.run(
        [tracer, "run", "nope.csv", "-b", "customer_churn"], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: nope.csv: no such file"

    (workdir / "wrong.csv").write_text("a,b\n1,2\n")
    wrong = subprocess.run(
        [tracer, "run", "wrong.csv", "-b", "customer_churn", "--no-notebook"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "needs fields missing from the file: 'customer_id'" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    usage = subprocess.run([tracer, "run"], capture_output=True, text=True)
    assert usage.returncode == 2


def test_cli_validate_exit_code_3_on_gate(churn_file):
    rows = [f"C{i},2025-06-01,2024-01-01,{'' if i % 3 else 5},1,1,basic" for i in range(1, 10)]
    path = churn_file(rows)
    done = subprocess.run(
        [venv_bin("tracer"), "validate", str(path), "-b", "customer_churn"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3
    assert "quality score" in done.stdout and "completeness" in done.stdout
    assert done.stderr.startswith("error: quality gate failed")


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for command in (
        "run",
        "batch",
        "validate",
        "profile",
        "blueprints",
        "runs",
        "rerun",
        "query",
        "report",
        "demo",
        "init",
    ):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("blueprint", "sample", "rows_out"),
    [("revenue_projection", "revenue.csv", 730), ("price_optimization", "prices.csv", 9_684)],
)
def test_papermill_runs_the_other_builtin_blueprints(workdir, blueprint, sample, rows_out):
    from .conftest import REPO

    result = tk.run_notebook(REPO / "data" / "samples" / sample, blueprint)
    assert result.state == "COMPLETED"
    assert result.rows_out == rows_out
    html = (workdir / "reports" / result.run_id / "notebook.html").read_text()
    assert "Quality score" in html and result.features_created[1] in html


def test_bad_file_through_the_notebook_is_one_sentence(workdir):
    (workdir / "empty.csv").write_bytes(b"")
    done = subprocess.run(
        [venv_bin("tracer"), "run", "empty.csv", "-b", "customer_churn"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: {workdir / 'empty.csv'}: is empty (0 bytes)"]
    runs = tk.query("SELECT state, error FROM runs")
    assert runs["state"].to_list() == ["FAILED"] and "is empty" in runs["error"].item()
