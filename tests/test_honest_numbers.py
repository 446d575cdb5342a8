"""Honest numbers: the gate verdict leads, null features and case variants raise issues, charts count every row."""

from __future__ import annotations

import re

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.report import feature_chart, show_summary

from .conftest import CHURN_HEADER

TELECOM_PLANS = ["Month-to-month", "One year", "Two year", "month-to-month "]


def _telecom(workdir, n=12):
    rows = [
        f"C{i},2024-05-0{1 + i % 5},2023-01-01,{10 + i},1,3,{TELECOM_PLANS[i % 4]}"
        for i in range(n)
    ]
    path = workdir / "telecom.csv"
    path.write_text("\n".join([CHURN_HEADER, *rows]) + "\n")
    return path


def test_plan_values_outside_the_hierarchy_raise_an_issue_naming_the_cause(workdir):
    r = tk.run_pipeline(_telecom(workdir), "customer_churn")
    (issue,) = [i for i in r.issues if i["check"] == "feature_mostly_null"]
    assert issue["column"] == "plan_value_score" and issue["severity"] == "medium"
    assert issue["rows_affected"] == 12 and issue["observed"] == 1.0
    assert "'Month-to-month', 'One year', 'Two year'" in issue["message"]
    assert "plan_levels" in issue["message"]
    stored = tk.query('SELECT "check" FROM quality_issues WHERE "check" = \'feature_mostly_null\'')
    assert stored.height == 1
    report = (workdir / "reports" / r.run_id / "report.html").read_text()
    assert "feature_mostly_null" in report


def test_plan_levels_declare_the_order(workdir):
    cfg = {"plan_levels": ["Month-to-month", "One year", "Two year"]}
    r = tk.run_pipeline(_telecom(workdir), "customer_churn", config=cfg)
    scores = pl.read_parquet(r.outputs["parquet"]).sort("source_row")["plan_value_score"].to_list()
    # rows cycle Month-to-month, One year, Two year, "month-to-month " (case and space folded)
    assert scores == [1, 2, 3, 1] * 3
    assert not [i for i in r.issues if i["check"] == "feature_mostly_null"]


def test_bad_plan_levels_are_refused():
    from tracer_kit.config import load_config

    with pytest.raises(tk.ConfigError, match="distinct"):
        load_config({"plan_levels": ["basic", "Basic"]})


def test_case_variants_are_flagged_and_counted_as_one(workdir):
    r = tk.run_pipeline(_telecom(workdir), "customer_churn")
    (issue,) = [i for i in r.issues if i["check"] == "inconsistent_case"]
    assert issue["column"] == "plan_type" and issue["rows_affected"] == 6  # 3 + 3 rows
    assert "'Month-to-month' / 'month-to-month'" in issue["message"]
    top = tk.query(
        f"SELECT hist_edges, hist_counts FROM column_profiles WHERE run_id = '{r.run_id}' "
        "AND \"column\" = 'plan_type'"
    ).row(0)
    assert top == ('["Month-to-month", "One year", "Two year"]', "[6, 3, 3]")


def test_no_valid_rows_leads_with_the_gate_verdict(workdir):
    rows = [f"C{i},yesterday,someday,abc,x,y,basic" for i in range(20)]
    (workdir / "all_bad.csv").write_text("\n".join([CHURN_HEADER, *rows]) + "\n")
    with pytest.raises(tk.QualityGateError) as caught:
        tk.run_pipeline("all_bad.csv", "customer_churn")
    result = caught.value.result
    assert str(caught.value).index("no_valid_rows") < str(caught.value).index("quality score")
    html = show_summary(result).data
    assert html.index("Quality gate FAILED") < html.index("Quality score")
    assert "no row passed validation" in html
    report = (workdir / "reports" / result.run_id / "report.html").read_text()
    assert report.index("Quality gate FAILED") < report.index('id="quality-score"')


def test_feature_chart_counts_every_row_on_bin_edges(workdir, sample_csv):
    r = tk.run_pipeline(sample_csv, "customer_churn", return_frame=False)
    html = feature_chart(r).data
    import base64

    svg = base64.b64decode(re.search(r"base64,([^\"]+)", html).group(1)).decode()
    assert "engagement_score: all 9,750 rows with a value" in svg
    assert "sample" not in svg


def test_above_the_exact_limit_the_histogram_is_the_spreads_scaled_to_every_row():
    """Sorting and binning every row of a huge column costs more than the rest of a profile;
    above ``exact_distinct_rows`` the bins come from an even spread, scaled to the row count."""
    import json

    from tracer_kit.profiling import column_profiles
    from tracer_kit.settings import override

    rows = 50_000
    frame = pl.DataFrame({"x": [float((i * 7919) % 1000) ** 1.5 for i in range(rows)]})
    exact = column_profiles(frame)
    with override(exact_distinct_rows=5_000):
        sampled = column_profiles(frame)
    counts = {
        name: json.loads(p["hist_counts"][0])
        for name, p in (("exact", exact), ("sampled", sampled))
    }
    assert sum(counts["exact"]) == rows
    assert counts["sampled"] != counts["exact"]  # (estimated, not counted)
    assert abs(sum(counts["sampled"]) - rows) <= len(counts["sampled"])  # (rounding, per bin)
    for e, s in zip(counts["exact"], counts["sampled"], strict=True):
        assert abs(e - s) / rows < 0.01  # each bin's share within a point of the exact one
    assert sampled["mean"][0] == exact["mean"][0]  # means, minima and maxima stay exact
    assert (sampled["min"][0], sampled["max"][0]) == (exact["min"][0], exact["max"][0])


def test_a_run_s_profiles_read_the_preprocessor_s_sample_above_the_exact_limit():
    """Above the limit a run's medians and histograms come from the rows its preprocessor
    was fitted on (not a second spread of every row), scaled to every row; a sample that
    lacks a numeric column is not used."""
    import json

    from tracer_kit.profiling import column_profiles
    from tracer_kit.settings import override

    rows = 20_000
    frame = pl.DataFrame({"x": [float(i % 100) for i in range(rows)], "y": [1.0] * rows})
    sample = pl.DataFrame({"x": [10.0] * 1_000 + [30.0] * 1_000, "y": [1.0] * 2_000})
    with override(exact_distinct_rows=5_000):
        given = column_profiles(frame.lazy(), sample=sample)
        own = column_profiles(frame.lazy(), sample=sample.drop("y"))  # (y missing: its own)
    x = given.filter(pl.col("column") == "x").row(0, named=True)
    assert x["median"] == 20.0  # the sample's median: half 10, half 30
    assert x["mean"] == 49.5  # means stay exact, over every row
    assert sum(json.loads(x["hist_counts"])) == rows  # the sample's bins scaled to every row
    # its own spread, every 4th row: x in 0, 4, ..., 96, whose median is 48
    assert own.filter(pl.col("column") == "x")["median"].item() == 48.0
