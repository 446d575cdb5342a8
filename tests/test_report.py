"""The HTML report: sections, escaping of data values, drift against the previous run, offline."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

import tracer_kit as tk
from tracer_kit.report import psi, rebin

from .conftest import CHURN_HEADER, write_csv

ROWS = [
    f"C{i},2025-06-{1 + i % 28:02d},2024-01-01,{i * 10}.5,{i % 4},{i * 3},basic"
    for i in range(1, 41)
]


def test_values_from_the_data_are_escaped(churn_file):
    rows = [
        *ROWS[:5],
        "<script>alert(1)</script>,2025-06-01,2024-01-01,5,1,1,<b>premium</b>",
        "C99,not <img src=x onerror=alert(2)>,2024-01-01,5,1,1,basic",
    ]
    r = tk.run_pipeline(churn_file(rows), "customer_churn")
    html = open(r.outputs["report"]).read()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>premium</b>" not in html
    assert not re.search(r"<script\b", html)  # the report has no script at all
    assert "http://" not in html and "https://" not in html


def test_report_sections(churn_file):
    r = tk.run_pipeline(
        churn_file([*ROWS, "C1,2025-06-01,2024-01-01,-1,1,1,basic"]), "customer_churn"
    )
    html = open(r.outputs["report"]).read()
    for section in (
        "Quality score",
        "Issues",
        "Quarantine",
        "Column profile",
        "Features created",
        "Score over earlier runs",
        "Drift against the previous completed run",
        "Stage timings",
    ):
        assert f"<h2>{section}</h2>" in html
    assert "duplicate_id" in html and "out_of_range" in html
    assert html.count('<img class="chart"') >= 2  # input and feature distributions
    assert "No earlier completed run of customer_churn" in html


def test_drift_against_previous_run_and_rebuild(workdir):
    # two monthly exports of one dataset ("customers"): drift compares runs of the same dataset
    a = tk.run_pipeline(
        write_csv(workdir / "customers_2024-06-01.csv", CHURN_HEADER, ROWS), "customer_churn"
    )
    shifted = [r.replace(",basic", ",premium") for r in ROWS]
    b = tk.run_pipeline(
        write_csv(workdir / "customers_2024-07-01.csv", CHURN_HEADER, shifted), "customer_churn"
    )
    html = open(b.outputs["report"]).read()
    assert f"Compared with run <code>{a.run_id}</code>" in html
    drift = html[html.index('id="drift-table"') :]
    row = re.search(r"<code>plan_type</code>.*?</tr>", drift, re.S).group(0)
    assert "major" in row  # every plan changed from basic to premium
    assert 'alt="Quality score of earlier runs"' in html
    # `tracer report RUN_ID` rebuilds the same page
    (workdir / b.outputs["report"]).unlink()
    done = subprocess.run(
        [sys.executable, "-m", "tracer_kit.cli", "report", b.run_id], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    rebuilt = open(b.outputs["report"]).read()
    rebuilt_drift = rebuilt[rebuilt.index('id="drift-table"') :]
    assert "major" in re.search(r"<code>plan_type</code>.*?</tr>", rebuilt_drift, re.S).group(0)


def test_psi_by_hand():
    # shares 0.5/0.5 vs 0.9/0.1: (0.9-0.5) ln(0.9/0.5) + (0.1-0.5) ln(0.1/0.5)
    expected = 0.4 * math.log(1.8) - 0.4 * math.log(0.2)
    assert psi([50, 50], [90, 10]) == pytest.approx(expected)
    assert psi([1, 2, 3], [2, 4, 6]) == 0.0


def test_rebin_spreads_counts_uniformly():
    # 10 values in [0, 2) onto [0, 1) and [1, 2): 5 each; a single-value bin lands where it falls
    assert rebin([0.0, 2.0], [10], [0.0, 1.0, 2.0]) == [5.0, 5.0]
    assert rebin([1.5, 1.5], [4], [0.0, 1.0, 2.0]) == [0.0, 4.0]


def test_the_report_leads_with_the_answer(workdir, sample_csv):
    """Issue 27: the question as the title, the predictions right after the verdict, each metric
    explained with its direction and baseline, a confusion table, the riskiest customers and a
    link to every prediction; personal identifiers hidden."""
    import re
    from pathlib import Path

    r = tk.run_pipeline(sample_csv, "customer_churn", config={"pii": ["customer_id"]})
    html = Path(r.outputs["report"]).read_text()
    assert "<h1>Which customers are likely to churn?</h1>" in html
    order = [
        html.index(s) for s in ('id="verdict"', 'id="predictions"', "<h2>File</h2>", "<h2>Issues")
    ]
    assert order == sorted(order)
    for words in (
        "ROC AUC",
        "higher is better; 0.5 is a coin flip",
        "Brier score",
        "lower is better; 0 is perfect",
    ):
        assert words in html
    table = html.split('id="confusion"')[1].split("</table>")[0]
    cells = [int(v.replace(",", "")) for v in re.findall(r'<td class="n">([\d,]+)</td>', table)]
    assert len(cells) == 4 and sum(cells) == r.params["model"]["rows_test"] == 1950
    riskiest = html.split('id="riskiest"')[1].split("</table>")[0]
    probs = [float(v) for v in re.findall(r'<td class="n">(0\.\d+)</td>', riskiest)]
    assert len(probs) == 20 and probs == sorted(probs, reverse=True)
    assert riskiest.count("(hidden: personal)") == 20  # customer_id is personal here
    href = re.search(r'id="predictions-file" href="([^"]+)"', html).group(1)
    assert (Path(r.outputs["report"]).parent / href).resolve() == Path(
        r.outputs["predictions"]
    ).resolve()


def test_plan_levels_from_the_config_show_in_the_formula(churn_file):
    from pathlib import Path

    rows = [
        f"C{i},2024-05-0{i % 9 + 1},2023-01-01,10,1,3,{'gold' if i % 2 else 'silver'}"
        for i in range(30)
    ]
    path = churn_file(rows)
    r = tk.run_pipeline(path, "customer_churn", config={"plan_levels": ["silver", "gold"]})
    html = Path(r.outputs["report"]).read_text()
    assert "plan_type silver=1, gold=2 (plan_levels from the config" in html
