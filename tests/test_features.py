"""The nine churn features on hand-computed rows (reference date 2025-06-30)."""

from __future__ import annotations

import math

import polars as pl
import pytest

import tracer_kit as tk

ROWS = [
    # A: tenure 0 (the max(., 1) floors), premium in mixed case
    "C1,2025-06-30,2025-06-30,100,3,10,Premium",
    # B: 30 days quiet, 365 days tenure
    "C2,2025-05-31,2024-06-30,365,12,730,basic",
    # C: no support_tickets (drops out of engagement), unknown plan, zero value
    "C3,2025-06-15,2025-06-10,0,,0,gold",
    # D: ties B on total_value (broken by source_row), 731 days tenure across 2024-02-29
    "C4,2025-06-29,2023-06-30,365,0,100,ENTERPRISE",
]


@pytest.fixture
def features(churn_file) -> pl.DataFrame:
    path = churn_file(ROWS)
    result = tk.run_pipeline(
        path, "customer_churn", config={"reference_date": "2025-06-30"}, report=False
    )
    assert result.state == "COMPLETED"
    assert result.rows_valid == 4
    return result.frame.sort("source_row")


def col(df: pl.DataFrame, name: str) -> list:
    return df.get_column(name).to_list()


def test_days_and_tenure(features):
    assert col(features, "days_since_last_activity") == [0, 30, 15, 1]
    # 2023-06-30 -> 2025-06-30 spans 2024-02-29: 731 days
    assert col(features, "account_tenure_days") == [0, 365, 20, 731]


def test_rates_floor_tenure_at_one_day(features):
    # 100 / max(0, 1); 365 / 365; 0 / 20; 365 / 731
    assert col(features, "daily_value_rate") == pytest.approx([100.0, 1.0, 0.0, 0.4993160054719562])
    # 10 / 1; 730 / 365; 0 / 20; 100 / 731
    assert col(features, "feature_usage_rate") == pytest.approx(
        [10.0, 2.0, 0.0, 0.13679890560875513]
    )


def test_support_intensity_per_month_at_least_one(features):
    # 3 / max(0/30, 1) = 3; 12 / (365/30) = 0.98630...; null stays null; 0 / (731/30) = 0
    values = col(features, "support_intensity")
    assert values[0] == pytest.approx(3.0)
    assert values[1] == pytest.approx(0.9863013698630138)
    assert values[2] is None
    assert values[3] == 0.0


def test_activity_recency_score(features):
    # exp(-0/30), exp(-30/30), exp(-15/30), exp(-1/30)
    assert col(features, "activity_recency_score") == pytest.approx(
        [1.0, 0.36787944117144233, 0.6065306597126334, 0.9672161004820059]
    )


def test_value_tier_ties_broken_by_source_row(features):
    # values 100, 365, 0, 365 -> ordinal ranks 2, 3, 1, 4 (the tie: row 2 before row 4); ceil(4 * r / 4)
    assert col(features, "value_tier") == [2, 3, 1, 4]


def test_plan_value_score_case_insensitive_unknown_null(features):
    assert col(features, "plan_value_score") == [3, 1, None, 4]


def test_engagement_score(features):
    # min-max per input over the 4 rows, support inverted, nulls drop out:
    # A: mean(1, 1, 1, 1 - 1) = 0.75
    # B: mean(0, 0.2, 0.01, 1 - 0.98630/3) = 0.22030821917808220
    # C: mean(0.37754..., 0, 0) (no support) = 0.12584688959938180
    # D: mean(0.94813..., 0.01367..., 0.00499..., 1 - 0) = 0.49170242130444597
    assert col(features, "engagement_score") == pytest.approx(
        [0.75, 0.2203082191780822, 0.1258468895993818, 0.49170242130444597]
    )


def test_constant_inputs_normalise_to_half(churn_file):
    path = churn_file(
        ["C1,2025-06-01,2025-01-01,50,1,5,basic", "C2,2025-06-01,2025-01-01,50,1,5,basic"]
    )
    result = tk.run_pipeline(path, "customer_churn", report=False)
    # every input equal -> each min-max gives 0.5 -> mean(0.5, 0.5, 0.5, 1 - 0.5) = 0.5
    assert col(result.frame, "engagement_score") == [0.5, 0.5]
    # default reference date = the latest last_activity_date (2025-06-01)
    assert col(result.frame, "days_since_last_activity") == [0, 0]
    assert result.params["reference_date"] == "2025-06-01"


def test_missing_optional_column_gives_null_features(churn_file):
    header = "customer_id,last_activity_date,account_created_date,total_value"
    path = churn_file(["C1,2025-06-30,2025-05-31,30", "C2,2025-06-30,2025-06-20,10"], header=header)
    result = tk.run_pipeline(path, "customer_churn", report=False)
    frame = result.frame.sort("source_row")
    assert col(frame, "support_intensity") == [None, None]
    assert col(frame, "plan_value_score") == [None, None]
    # tenure 30 and 10 -> daily value 1.0 and 1.0; recency both 1 -> engagement 0.5 for each part
    assert col(frame, "daily_value_rate") == [1.0, 1.0]
    assert all(math.isclose(v, 0.5) for v in col(frame, "engagement_score"))
