"""The churn model on data with a planted answer: it finds it, is calibrated, and refuses a leak."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tracer_kit.model import fit_churn, label_values


def _planted(n: int = 3000, seed: int = 3, leak: bool = False) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "premium"], n)
    logit = -1.0 + 1.2 * x1 - 0.8 * x2 + 0.5 * (plan == "basic")
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(int)
    frame = pl.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "noise": rng.normal(size=n),
            "plan": plan,
            "churned": np.where(y, "Yes", "no"),
        }
    )
    if leak:
        frame = frame.with_columns(cancel_flag=pl.Series(y + rng.normal(0, 0.01, n)))
    return frame, p


def test_labels_are_read_in_any_spelling():
    values = pl.Series(["yes", "No", " TRUE ", "false", "1", "0", "y", "N", "maybe", None])
    got = pl.select(label_values(pl.lit(values))).to_series().to_list()
    assert got == [1, 0, 1, 0, 1, 0, 1, 0, None, None]


def test_the_model_finds_the_planted_signal_and_is_calibrated():
    from sklearn.metrics import roc_auc_score

    frame, p = _planted()
    m = fit_churn(frame, ["x1", "x2", "noise", "plan"], seed=0)
    y = label_values(pl.col("churned"))
    labels = frame.select(y).to_series().to_numpy()
    oracle = roc_auc_score(labels, p)  # the planted model's own AUC, about 0.8
    assert 0.75 < oracle < 0.85
    assert m.metrics["roc_auc"] > oracle - 0.04 and m.baseline["roc_auc"] == 0.5
    assert (
        m.metrics["brier"] < m.baseline["brier"] and m.metrics["log_loss"] < m.baseline["log_loss"]
    )
    assert m.metrics["lift_top_decile"] > 1.8 and m.baseline["lift_top_decile"] == 1.0
    assert (m.rows_train, m.rows_test) == (2400, 600)
    assert set(m.cv_log_loss) == {
        "logistic_regression",
        "logistic_splines",
        "hist_gradient_boosting",
    }
    assert m.chosen == min(m.cv_log_loss, key=m.cv_log_loss.get)
    # calibrated: on held-out customers the mean probability is the churn rate
    probs = m.predict(frame)
    assert abs(probs.mean() - labels.mean()) < 0.03
    assert [r["input"] for r in m.importance[:2]] == ["x1", "x2"]
    assert m.importance[-1]["input"] in ("noise", "plan") and m.left_out == {}


def test_a_leaking_input_is_left_out():
    frame, _ = _planted(leak=True)
    m = fit_churn(frame, ["x1", "x2", "noise", "plan", "cancel_flag"], seed=0)
    assert list(m.left_out) == ["cancel_flag"] and m.left_out["cancel_flag"] > 0.99
    assert "cancel_flag" not in m.inputs and m.metrics["roc_auc"] < 0.9


def test_too_few_churners_is_one_clear_error():
    import tracer_kit as tk

    frame, _ = _planted(200)
    frame = frame.with_columns(
        churned=pl.when(pl.int_range(pl.len()) < 5).then(pl.lit("yes")).otherwise(pl.lit("no"))
    )
    with pytest.raises(tk.ConfigError, match="at least 20 churned and 20 retained"):
        fit_churn(frame, ["x1", "x2"])
