"""The model stage inside runs: saved, recorded, reproduced, and applied to new files by predict."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import tracer_kit as tk
from tracer_kit._resources import resource_path
from tracer_kit.datasets import customers, price_elasticities
from tracer_kit.ingest import file_sha256

from .conftest import REPO, venv_bin

SAMPLES = REPO / "data" / "samples"


def _places(root: Path) -> dict[str, str]:
    return {
        "warehouse": str(root / "w.duckdb"),
        "output_dir": str(root / "reports"),
        "processed_dir": str(root / "processed"),
    }


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    """One churn run on the labelled demo sample, and its rerun with the same run date."""
    root = tmp_path_factory.mktemp("churn")
    first = tk.run_pipeline(
        SAMPLES / "customers.csv", "customer_churn", run_date="2026-01-01", **_places(root)
    )
    again = tk.run_pipeline(
        SAMPLES / "customers.csv",
        "customer_churn",
        run_date="2026-01-01",
        report=False,
        **_places(root),
    )
    return root, first, again


def test_the_run_records_its_model_and_predictions(churn):
    root, r, _ = churn
    con = duckdb.connect(str(root / "w.duckdb"), read_only=True)
    model = con.sql(f"SELECT * FROM models WHERE run_id = '{r.run_id}'").pl().row(0, named=True)
    rows = con.sql(f"SELECT * FROM predictions_customer_churn WHERE run_id = '{r.run_id}'").pl()
    con.close()
    assert model["blueprint"] == "customer_churn" and model["model_kind"] == "calibrated_classifier"
    assert model["training_rows"] == r.params["model"]["rows_train"] == round(0.8 * r.rows_out)
    assert model["model_sha256"] == file_sha256(r.outputs["predictor"])
    assert '"roc_auc"' in model["metrics"] and '"test_size": 0.2' in model["parameters"]
    assert rows.height == r.rows_out and rows["model_run_id"].unique().to_list() == [r.run_id]
    assert rows["customer_id"].to_list() == r.frame["customer_id"].to_list()
    p = rows["prediction"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert np.allclose(rows["confidence"].to_numpy(), np.abs(2 * p - 1))


def test_on_the_sample_the_model_gets_close_to_the_planted_model(churn):
    """The demo sample's label comes from a known logistic model: the run's model nearly matches it."""
    from sklearn.metrics import roc_auc_score

    from tracer_kit.datasets import churn_probability

    _, r, _ = churn
    metrics, baseline = r.params["model"]["metrics"], r.params["model"]["baseline"]
    end = pl.date(2025, 6, 30)
    truth = r.frame.with_columns(
        quiet=(end - pl.col("last_activity_date")).dt.total_days(),
        tenure=(end - pl.col("account_created_date")).dt.total_days(),
    )
    p = churn_probability(
        truth["quiet"].to_numpy(),
        truth["tenure"].to_numpy(),
        truth["support_tickets"].cast(pl.Float64).fill_null(0).to_numpy(),
        truth["feature_usage_count"].cast(pl.Float64).fill_null(0).to_numpy(),
        truth["plan_type"].str.to_lowercase().fill_null("").to_numpy(),
    )
    oracle = roc_auc_score((truth["churned"] == "yes").to_numpy(), p)
    assert 0.8 <= oracle <= 0.86
    assert abs(metrics["roc_auc"] - oracle) < 0.05
    assert metrics["brier"] < baseline["brier"] and metrics["log_loss"] < baseline["log_loss"]
    assert metrics["lift_top_decile"] > 2 and baseline["lift_top_decile"] == 1.0
    assert r.params["model"]["rows_test"] == round(0.2 * r.rows_out)


def test_the_report_has_a_predictions_section(churn):
    _, r, _ = churn
    html = Path(r.outputs["report"]).read_text(encoding="utf-8")
    capture = r.params["model"]["metrics"]["capture_top_decile"]
    assert 'id="predictions">Predictions' in html
    assert f"the top 10% of customers by risk hold {capture:.0%} of the churners" in html
    assert "ROC curve and calibration" in html and "Top drivers" in html
    assert f"{r.params['model']['baseline']['brier']:.3f}" in html


def test_a_rerun_reproduces_the_model_and_its_predictions_exactly(churn):
    _, r, again = churn
    assert file_sha256(again.outputs["predictor"]) == file_sha256(r.outputs["predictor"])
    assert file_sha256(again.outputs["preprocessor"]) == file_sha256(r.outputs["preprocessor"])
    assert pl.read_parquet(again.outputs["predictions"]).equals(
        pl.read_parquet(r.outputs["predictions"])
    )


def test_predicting_ten_training_rows_scores_them_as_the_run_did(churn, tmp_path):
    """File-wide statistics come from the training run: 10 rows alone score exactly as inside it."""
    root, r, _ = churn
    ten = pl.read_csv(SAMPLES / "customers.csv", infer_schema=False).slice(40, 10)
    ten.write_csv(tmp_path / "ten.csv")
    p = tk.predict(r.run_id, tmp_path / "ten.csv", out=tmp_path / "ten.parquet", **_places(root))
    assert p.params["trained_by"] == r.run_id and p.rows_out == 10
    assert p.params["feature_statistics"] == r.params["feature_statistics"]
    scored = pl.read_parquet(tmp_path / "ten.parquet")
    inside = pl.read_parquet(r.outputs["predictions"]).filter(
        pl.col("customer_id").is_in(ten["customer_id"].to_list())
    )
    assert scored.equals(inside)
    processed = pl.read_parquet(p.outputs["parquet"]).drop("source_row", "extras")
    same = r.frame.filter(pl.col("customer_id").is_in(ten["customer_id"].to_list()))
    assert processed.equals(same.drop("source_row", "extras"))  # value_tier, engagement_score too


def test_tracer_predict_scores_a_second_file_and_lists_rows_it_could_not(churn, tmp_path):
    root, r, _ = churn
    other = customers(400, seed=99)  # unlabelled, with about 0.5% broken rows
    other.write_csv(tmp_path / "march.csv")
    args = [venv_bin("tracer"), "predict", r.run_id, str(tmp_path / "march.csv")]
    args += ["--out", str(tmp_path / "march_scores.csv"), "--warehouse", str(root / "w.duckdb")]
    done = subprocess.run(args, capture_output=True, text=True, cwd=root, check=False)
    assert done.returncode == 0, done.stderr
    scores = pl.read_csv(tmp_path / "march_scores.csv")
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as con:
        run_id, valid, quarantined = con.execute(
            "SELECT run_id, rows_valid, rows_quarantined FROM runs "
            "WHERE json_extract_string(params, '$.trained_by') = ? AND input_path LIKE '%march.csv'",
            [r.run_id],
        ).fetchone()
        stored = con.execute(
            "SELECT count(*) FROM predictions_customer_churn WHERE run_id = ?", [run_id]
        ).fetchone()[0]
    assert stored == valid == scores.height
    assert (
        quarantined > 0
        and f"{quarantined} row(s) failed validation and were not scored" in done.stdout
    )
    assert f"saved model of run {r.run_id}" in done.stdout
    assert scores.columns == ["customer_id", "prediction", "confidence"]


def test_predict_exits_3_when_the_new_file_fails_the_gate(churn, tmp_path):
    root, r, _ = churn
    bad = customers(100, seed=5).with_columns(last_activity_date=pl.lit("not a date"))
    bad.write_csv(tmp_path / "bad.csv")
    args = [venv_bin("tracer"), "predict", r.run_id, str(tmp_path / "bad.csv")]
    done = subprocess.run(
        [*args, "--warehouse", str(root / "w.duckdb")], capture_output=True, text=True, cwd=root
    )
    assert done.returncode == 3 and "quality gate failed" in done.stderr


def test_without_a_label_there_is_no_churn_model_and_the_report_says_how(workdir):
    tiny = resource_path("tracer_kit/samples/customers_tiny.csv")  # (no churned column)
    shutil.copy(tiny, "unlabelled.csv")
    r = tk.run_pipeline("unlabelled.csv", "customer_churn")
    assert r.params["model"]["model"] is None
    assert "predictions" not in r.outputs and "predictor" not in r.outputs
    html = Path(r.outputs["report"]).read_text(encoding="utf-8")
    assert "no churn model: add a &#39;churned&#39; column" in html
    assert "no churn score is given." in html  # (whole: not shortened)
    assert "characters)</p>" not in html
    assert tk.query("SELECT count(*) AS n FROM models")["n"].item() == 0
    with pytest.raises(tk.TracerError, match="has no saved model: no churn model"):
        tk.predict(r.run_id, "unlabelled.csv")


def test_no_model_skips_the_stage_and_leaves_the_processed_rows_alone(churn, workdir, sample_csv):
    _, on, _ = churn
    off = tk.run_pipeline(
        sample_csv, "customer_churn", config={"model": {"enabled": False}}, run_date="2026-01-01"
    )
    assert off.params["model"] == {
        "model": None,
        "why": "the model stage is turned off (--no-model)",
    }
    assert "predictions" not in off.outputs and "model" in off.stage_seconds
    assert pl.read_parquet(on.outputs["parquet"]).equals(pl.read_parquet(off.outputs["parquet"]))
    html = Path(off.outputs["report"]).read_text(encoding="utf-8")
    assert "turned off (--no-model)" in html
    assert "Add a &#39;churned&#39; column" not in html  # (the file has one: no such advice)


def test_an_unknown_candidate_is_one_clear_error(workdir, sample_csv):
    with pytest.raises(tk.ConfigError, match="unknown churn model 'xgboost'; known: logistic"):
        tk.run_pipeline(sample_csv, "customer_churn", config={"model": {"candidates": ["xgboost"]}})


def test_a_model_file_holding_foreign_types_is_refused(tmp_path):
    import datetime as dt

    import skops.io as sio

    from tracer_kit.model import read_model

    sio.dump({"when": dt.date(2026, 1, 1)}, tmp_path / "odd.skops")
    with pytest.raises(tk.TracerError, match="refusing to load a model holding unexpected types"):
        read_model(tmp_path / "odd.skops")


def test_revenue_forecast_beats_seasonal_naive_and_predict_continues_it(workdir):
    r = tk.run_pipeline(SAMPLES / "revenue.csv", "revenue_projection", report=False)
    m = r.params["model"]
    assert m["model"] == "trend_seasonal" and m["origins"] >= 3
    assert m["scores"]["trend_seasonal"]["mase"] < m["scores"]["seasonal_naive"]["mase"]
    rows = pl.read_parquet(r.outputs["predictions"])
    assert rows.height == 90 and rows["date"][0] == r.frame["date"].max() + dt.timedelta(days=1)
    assert (rows["lower_95"] <= rows["lower"]).all() and (rows["lower"] <= rows["prediction"]).all()
    assert (rows["prediction"] <= rows["upper"]).all() and (rows["upper"] <= rows["upper_95"]).all()
    assert rows["confidence"].is_between(0, 1).all()
    assert m["totals"]["next_30_days"] == pytest.approx(rows["prediction"].head(30).sum())
    again = tk.predict(r.run_id, SAMPLES / "revenue.csv", report=False)
    assert pl.read_parquet(again.outputs["predictions"]).equals(rows)


def test_price_elasticities_recover_the_planted_ones(workdir):
    r = tk.run_pipeline(SAMPLES / "prices.csv", "price_optimization", report=False)
    planted = price_elasticities()
    rows = pl.read_parquet(r.outputs["predictions"])
    known = rows.filter("identifiable")
    inside = known.filter(
        pl.col("lower") <= pl.col("product_id").replace_strict(planted, return_dtype=pl.Float64)
    ).filter(
        pl.col("product_id").replace_strict(planted, return_dtype=pl.Float64) <= pl.col("upper")
    )
    assert known.height >= 40 and inside.height >= 0.9 * known.height
    unknown = rows.filter(~pl.col("identifiable"))
    assert (
        unknown["prediction"].null_count() == unknown.height and (unknown["confidence"] == 0).all()
    )
    ranges = r.frame.group_by("product_id").agg(lo=pl.col("price").min(), hi=pl.col("price").max())
    best = known.join(ranges, on="product_id")
    assert ((best["optimal_price"] >= best["lo"]) & (best["optimal_price"] <= best["hi"])).all()
    scored = tk.predict(r.run_id, SAMPLES / "prices.csv", report=False)
    per_row = pl.read_parquet(scored.outputs["predictions"])
    assert per_row.height == r.rows_out
    assert per_row.filter(pl.col("identifiable"))["expected_quantity"].null_count() == 0


def test_a_leaking_input_is_a_high_issue_and_left_out(workdir):
    frame = customers(2_000, seed=4, invalid=False, label=True)
    leaky = frame.with_columns(
        support_tickets=pl.when(pl.col("churned") == "yes").then(pl.lit("9")).otherwise(pl.lit("0"))
    )
    leaky.write_csv("leaky.csv")
    r = tk.run_pipeline("leaky.csv", "customer_churn", report=False)
    leaks = {"support_tickets", "support_intensity"}  # the ticket count and the rate built on it
    assert set(r.params["model"]["left_out"]) == leaks
    assert not leaks & set(r.params["model"]["inputs"])
    stored = tk.query(
        f'SELECT severity, "column", observed, message FROM quality_issues '
        f"WHERE run_id = '{r.run_id}' AND \"check\" = 'leakage'"
    )
    assert stored["severity"].to_list() == ["high", "high"] and set(stored["column"]) == leaks
    assert (stored["observed"] > 0.99).all()
    assert stored["message"].str.contains("left out of the churn model").all()


def test_a_successful_run_with_an_absent_optional_field_shows_no_library_warning(workdir):
    """Issue 27: scikit-learn's imputer warned 43 times when an optional field was absent."""
    import warnings

    from tracer_kit.datasets import customers

    customers(3000, label=True).drop("support_tickets").write_csv(workdir / "c.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = tk.run_pipeline(workdir / "c.csv", "customer_churn", return_frame=False)
    assert r.state == "COMPLETED" and r.params["model"]["model"] is not None
    assert [str(w.message) for w in caught] == []
    assert "support_intensity" in r.params["model"]["empty_inputs"]  # named once, in the run
