"""Messages and displays speak to a person: short reprs, HTML in notebooks, no tracebacks in notebook.html."""

from __future__ import annotations

import datetime as dt

import pytest

import tracer_kit as tk
from tracer_kit.errors import option, speaking

from .conftest import CHURN_HEADER


def test_results_have_short_reprs_and_html(workdir, sample_csv):
    r = tk.run_pipeline(sample_csv, "customer_churn", return_frame=False)
    assert repr(r) == (
        f"RunResult({r.run_id} customer_churn COMPLETED: 10000 rows in, 9750 valid, "
        f"250 quarantined, 9750 out, score 99.1, {len(r.issues)} issues)"
    )
    assert "Quality gate passed" in r._repr_html_() and "quality-score" in r._repr_html_()
    q = tk.validate(sample_csv, "customer_churn")
    assert repr(q).startswith("QualityResult('customer_churn', gate passed, score 99.1, 10000 in")
    assert "uniqueness" in q._repr_html_()
    bp = tk.get_blueprint("customer_churn")
    assert repr(bp) == "Blueprint('customer_churn': 4 required, 4 optional fields, 9 features)"
    assert "<code>engagement_score</code>" in bp._repr_html_()
    p = tk.profile(sample_csv)
    assert "10,000 rows" in p._repr_html_()


def test_profile_date_statistics_are_dates(workdir):
    rows = ["C1,2024-01-01,2023-01-01,1,1,1,basic", "C2,2024-01-03,2023-01-03,1,1,1,basic"]
    (workdir / "d.csv").write_text("\n".join([CHURN_HEADER, *rows]) + "\n")
    cols = tk.profile("d.csv").columns
    row = cols.filter(cols["column"] == "last_activity_date").row(0, named=True)
    assert (row["min"], row["max"], row["mean_date"], row["median_date"]) == (
        "2024-01-01",
        "2024-01-03",
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 2),
    )
    assert row["mean"] is None  # never epoch days


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("cli", "--map A=B"),
        ("python", "column_map={'A': 'B'}"),
        ("widget", "Map: A=B"),
    ],
)
def test_options_are_spelled_in_the_users_interface(where, expected):
    with speaking(where):
        assert option("column_map", src="A", dst="B") == expected


def test_python_errors_name_keyword_arguments(workdir):
    (workdir / "r.csv").write_text(CHURN_HEADER + "\nC1,2024-05-01,2023-01-01,10,1,3\n")
    with pytest.raises(tk.IngestError, match=r"on_bad_lines='quarantine'"):
        tk.read_table("r.csv", on_bad_lines="error")
    with pytest.raises(tk.ConfigError, match=r"reference_date='30/06/2024' is not a date"):
        tk.run_pipeline("r.csv", "customer_churn", config={"reference_date": "30/06/2024"})


@pytest.mark.slow
def test_failed_notebook_html_shows_one_readable_block(workdir):
    rows = [f"C{i},yesterday,someday,abc,x,y,basic" for i in range(20)]
    (workdir / "all_bad.csv").write_text("\n".join([CHURN_HEADER, *rows]) + "\n")
    with pytest.raises(tk.QualityGateError):
        tk.run_notebook("all_bad.csv", "customer_churn")
    (run_dir,) = (workdir / "reports").iterdir()
    html = (run_dir / "notebook.html").read_text()
    assert "The run stopped." in html and "no row passed validation" in html
    for noise in ("Traceback", "File &quot;", "---&gt;", "raise_for_gate"):
        assert noise not in html
