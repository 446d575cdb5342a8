"""Compatibility, typing from text, quarantine reasons, counts, the score and the gate."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit.quality import date_conventions, match_columns, suggest_columns

RUN_DATE = dt.date(2025, 7, 1)

MESSY = [
    "C1,2025-06-30,2024-01-01,10,1,1,basic",  # 1 valid
    "C2,2025-06-29,2024-01-01,20,1,1,basic",  # 2 valid
    "C1,2025-06-28,2024-01-01,30,1,1,basic",  # 3 duplicate_id (C1 first at row 1)
    ",2025-06-27,2024-01-01,40,1,1,basic",  # 4 missing_required (id)
    "C5,yesterday,2024-01-01,50,1,1,basic",  # 5 invalid_date
    "C6,2025-06-25,2024-01-01,-5,1,1,basic",  # 6 out_of_range
    "C7,2025-07-02,2024-01-01,70,1,1,basic",  # 7 future_date (after run date 2025-07-01)
    "C8,2025-01-01,2025-02-01,80,1,1,basic",  # 8 activity_before_created
    "C9,2025-06-20,2024-01-01,90,x,1,basic",  # 9 invalid_number (optional field)
    "C10,2025-06-20,2024-01-01,,-1,1,basic",  # 10 missing_required + out_of_range
]


def test_suggestions_are_case_space_and_fuzzy_insensitive():
    cols = ["CustomerID", "Last Activity Date", "created", "Total Value"]
    assert suggest_columns("customer_id", cols)[0] == "CustomerID"
    assert suggest_columns("last_activity_date", cols)[0] == "Last Activity Date"


def test_normalised_names_are_mapped_automatically():
    bp = tk.get_blueprint("customer_churn")
    cols = ["CustomerID", "Last Activity Date", "account-created-date", "TOTAL_VALUE", "notes"]
    assert match_columns(cols, bp) == {
        "CustomerID": "customer_id",
        "Last Activity Date": "last_activity_date",
        "account-created-date": "account_created_date",
        "TOTAL_VALUE": "total_value",
    }


def test_missing_columns_error_names_each_with_suggestions(churn_file):
    path = churn_file(
        ["1,2025-01-01,2024-01-01,5"],
        header="cust_id,last_activity,account_created_date,total_value",
    )
    with pytest.raises(tk.CompatibilityError) as err:
        tk.validate(path, "customer_churn")
    msg = str(err.value)
    assert "'customer_id' (did you mean 'cust_id'?)" in msg
    assert "'last_activity_date' (did you mean 'last_activity'?)" in msg
    assert str(path) in msg
    assert err.value.missing == ["customer_id", "last_activity_date"]
    assert err.value.suggestions["customer_id"] == ["cust_id"]


def test_column_map_renames(churn_file):
    path = churn_file(["A,2025-01-01,2024-01-01,5"], header="cust_id,seen,since,value")
    cfg = {
        "column_map": {
            "cust_id": "customer_id",
            "seen": "last_activity_date",
            "since": "account_created_date",
            "value": "total_value",
        }
    }
    q = tk.validate(path, "customer_churn", config=cfg)
    assert q.rows_valid == 1
    assert q.valid.get_column("customer_id").to_list() == ["A"]


def test_column_map_unknown_source_is_a_config_error(churn_file):
    path = churn_file(["C1,2025-01-01,2024-01-01,5,1,1,basic"])
    with pytest.raises(tk.ConfigError, match="no such column"):
        tk.validate(path, "customer_churn", config={"column_map": {"nope": "customer_id"}})


def test_every_reason_quarantined_and_counts_add_up(churn_file):
    from tracer_kit.quality import assess

    path = churn_file(MESSY)
    ing = tk.read_table(path)
    q = assess(ing.frame, tk.get_blueprint("customer_churn"), run_date=RUN_DATE)
    assert (q.rows_in, q.rows_valid, q.rows_quarantined) == (10, 2, 8)
    reasons = dict(
        zip(q.quarantine["source_row"].to_list(), q.quarantine["reasons"].to_list(), strict=True)
    )
    assert reasons == {
        3: ["duplicate_id"],
        4: ["missing_required"],
        5: ["invalid_date"],
        6: ["out_of_range"],
        7: ["future_date"],
        8: ["activity_before_created"],
        9: ["invalid_number"],
        10: ["missing_required", "out_of_range"],  # in field order: total_value, support_tickets
    }
    # source_line = source_row + 1 (header on line 1)
    assert q.quarantine["source_line"].to_list() == [4, 5, 6, 7, 8, 9, 10, 11]
    assert q.valid["customer_id"].to_list() == ["C1", "C2"]
    # the reference date is the latest last_activity_date not after the run date
    assert q.reference_date == dt.date(2025, 6, 30)


def test_score_parts_by_the_formula(churn_file):
    from tracer_kit.quality import assess

    q = assess(
        tk.read_table(churn_file(MESSY)).frame,
        tk.get_blueprint("customer_churn"),
        run_date=RUN_DATE,
    )
    # completeness: mean over 4 required fields of present share: id 9/10, last 10/10, created 10/10, value 9/10
    assert q.score_parts["completeness"] == pytest.approx(0.95)
    # uniqueness: 8 distinct ids among 9 non-null
    assert q.score_parts["uniqueness"] == pytest.approx(8 / 9, abs=1e-6)
    assert q.score_parts["validity"] == pytest.approx(0.2)
    # consistency: rows 7 and 8 fail a cross-field rule -> 8/10
    assert q.score_parts["consistency"] == pytest.approx(0.8)
    # 100 * (0.4*0.95 + 0.2*0.888889 + 0.3*0.2 + 0.1*0.8) = 69.78
    assert q.score == pytest.approx(69.78, abs=0.01)
    assert not q.passed
    assert any("quality score 69.8 is under 80" in f for f in q.gate_failures)


def test_severities(churn_file):
    from tracer_kit.quality import assess

    q = assess(
        tk.read_table(churn_file(MESSY)).frame,
        tk.get_blueprint("customer_churn"),
        run_date=RUN_DATE,
    )
    found = {(i.severity, i.column, i.check) for i in q.issues}
    assert ("high", "customer_id", "uniqueness") in found
    assert ("high", "customer_id", "completeness") in found  # 90% < 95%
    assert ("high", "last_activity_date", "validity") in found  # 9/10 < 98%
    assert ("low", "last_activity_date,account_created_date", "future_date") in found
    dup = next(i for i in q.issues if i.check == "uniqueness")
    assert dup.rows_affected == 1
    assert [e["source_row"] for e in dup.examples] == [1, 3]
    assert dup.examples[0]["source_line"] == 2


def test_required_field_half_empty_is_critical_and_stops_the_run(churn_file):
    rows = [f"C{i},2025-06-01,2024-01-01,{'' if i % 3 else 5},1,1,basic" for i in range(1, 10)]
    path = churn_file(rows)
    with pytest.raises(tk.QualityGateError) as err:
        tk.run_pipeline(path, "customer_churn", report=False)
    assert "critical" in str(err.value)
    assert any(i.severity == "critical" and i.column == "total_value" for i in err.value.issues)
    runs = tk.query("SELECT state, rows_in, rows_valid, rows_quarantined, error FROM runs")
    assert runs["state"].to_list() == ["FAILED"]
    assert runs["rows_in"].to_list() == [9]
    assert runs["rows_quarantined"].to_list() == [6]
    # the gate commits bronze, quarantine and issues, never processed rows
    assert tk.query("SELECT count(*) AS n FROM customer_churn_processed")["n"].item() == 0
    assert tk.query("SELECT count(*) AS n FROM quarantine_customer_churn")["n"].item() == 6
    assert tk.query("SELECT count(*) AS n FROM bronze_customer_churn")["n"].item() == 9
    status = tk.query(
        "SELECT validation_status, count(*) AS n FROM bronze_customer_churn_status "
        "GROUP BY 1 ORDER BY 1"
    )
    assert status.rows() == [("invalid", 6), ("valid", 3)]


def test_thresholds_are_configurable(churn_file):
    rows = [f"C{i},2025-06-01,2024-01-01,{'' if i % 3 else 5},1,1,basic" for i in range(1, 10)]
    cfg = {"thresholds": {"completeness_critical": 0.2, "min_score": 0}}
    q = tk.validate(churn_file(rows), "customer_churn", config=cfg)
    assert q.passed


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["13/01/2024", "02/03/2024"], "dmy"),
        (["01/13/2024", "02/03/2024"], "mdy"),
        (["01/02/2024", "02/03/2024"], None),
        (["13/01/2024", "01/13/2024"], None),
    ],
)
def test_date_convention(values, expected):
    frame = pl.LazyFrame({"d": values})
    assert date_conventions(frame, ["d"]) == {"d": expected}


def test_mixed_date_formats_parse_and_are_recorded(churn_file):
    rows = [
        "C1,2025-06-30,13/01/2024,1,,,",  # ISO + day-first slash
        "C2,Jun 5 2025,02/03/2024,1,,,",  # month name + slash read day-first
        "C3,2025-06-01T10:30:00,05/05/2024,1,,,",  # ISO with a time
    ]
    q = tk.validate(churn_file(rows), "customer_churn")
    assert q.rows_valid == 3
    created = q.valid.sort("source_row")["account_created_date"].to_list()
    assert created == [dt.date(2024, 1, 13), dt.date(2024, 3, 2), dt.date(2024, 5, 5)]
    assert q.date_formats["account_created_date"] == {"%d/%m/%Y": 3, "convention": "dmy"}
    assert q.date_formats["last_activity_date"]["month-name"] == 1


def test_ambiguous_slash_dates_are_quarantined(churn_file):
    rows = ["C1,2025-06-30,01/02/2024,1,,,", "C2,2025-06-30,03/03/2024,1,,,"]
    q = tk.validate(churn_file(rows), "customer_churn")
    reasons = dict(
        zip(q.quarantine["source_row"].to_list(), q.quarantine["reasons"].to_list(), strict=True)
    )
    assert reasons == {1: ["ambiguous_date"]}  # 03/03 reads the same either way
    assert q.date_formats["account_created_date"]["convention"] == "undecided"


def test_outlier_counts_and_bounds():
    from tracer_kit.quality import outlier_bounds

    b = outlier_bounds(pl.Series([1.0, 2.0, 3.0, 4.0, 100.0]))
    # Q1 = 2, Q3 = 4, IQR = 2 -> bounds [-1, 7]; 100 is outside
    assert (b["q1"], b["q3"], b["lower"], b["upper"], b["iqr_count"]) == (2.0, 4.0, -1.0, 7.0, 1)
    # mean 22, sample std 43.6... -> |100 - 22| = 78 < 3 std: no z outlier
    assert b["z_count"] == 0


def test_email_url_phone_validators(workdir):
    from tracer_kit.blueprints import Blueprint, Feature, Field

    bp = Blueprint(
        name="contacts_check",
        description="contacts",
        fields=(
            Field("contact_id", "id", required=True),
            Field("email", "email"),
            Field("site", "url"),
            Field("phone", "phone"),
        ),
        key=("contact_id",),
        identifier="contact_id",
        features=(Feature("has_email", pl.Boolean(), "email is not null"),),
        build_features=lambda lf, ctx: lf.with_columns(
            pl.col("email").is_not_null().alias("has_email")
        ),
    )
    path = workdir / "contacts.csv"
    path.write_text(
        "contact_id,email,site,phone\n"
        "1,ann@example.com,https://example.com/a,+44 20 7946 0958\n"
        "2,not-an-email,https://ok.org,555-0100\n"
        "3,bob@example.org,ftp://nope,(555) 010-0000\n"
        "4,,,12\n"
    )
    q = tk.validate(path, bp)
    reasons = dict(
        zip(q.quarantine["source_row"].to_list(), q.quarantine["reasons"].to_list(), strict=True)
    )
    assert reasons == {2: ["invalid_format"], 3: ["invalid_format"], 4: ["invalid_format"]}
    assert q.valid["contact_id"].to_list() == ["1"]


@pytest.mark.parametrize("n", [2, 3, 10, 101, 5000])
def test_outlier_bounds_equal_in_memory_quantiles(n):
    """Quartiles from order statistics (no full sort) equal polars' own linear quantiles."""
    from tracer_kit.quality import outlier_bounds

    values = pl.Series([((i * 7919) % 997) / 10 + (100.0 if i % 53 == 0 else 0) for i in range(n)])
    b = outlier_bounds(values)
    q1, q3 = values.quantile(0.25, "linear"), values.quantile(0.75, "linear")
    assert (b["q1"], b["q3"]) == pytest.approx((q1, q3), abs=1e-12)
    low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    assert b["iqr_count"] == ((values < low) | (values > high)).sum()
    assert b["z_count"] == ((values - values.mean()).abs() > 3 * values.std()).sum()
    lazy = outlier_bounds(values.to_frame("x").lazy(), "x")
    assert lazy == b
